"""Transforms for a split's ``transforms = [...]`` pipeline (see the data guide's transforms).

Random transforms draw only from the ``rng`` they are given, which the framework keys by
(seed, epoch, sample index): outputs are the same for any ``num_workers`` and across resume.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from runner import DataError, Prefetch, Registry, ShuffleBuffer
from runner_datasets.functions import Producer, registered_function


def _replace(sample: Any, field: int, value: Any) -> Any:
    if isinstance(sample, torch.Tensor):
        if field != 0:
            raise DataError(f"transform field {field}: the sample is a single tensor (use field = 0)")
        return value
    if isinstance(sample, (tuple, list)):
        if field >= len(sample):
            raise DataError(f"transform field {field}: samples have only {len(sample)} fields")
        items = list(sample)
        items[field] = value
        return tuple(items) if isinstance(sample, tuple) else items
    raise DataError(f"transform: expected a tensor or a tuple of tensors, found {type(sample).__name__}")


def _field(sample: Any, field: int) -> torch.Tensor:
    value = sample if isinstance(sample, torch.Tensor) else sample[field]
    if not isinstance(value, torch.Tensor):
        raise DataError(f"transform field {field}: expected a tensor, found {type(value).__name__}")
    return value


class Normalize:
    """``(x - mean) / std`` on field ``field``; deterministic, so it folds into in-memory tensors."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], field: int = 0) -> None:
        if not mean or not std:
            raise ValueError("normalize: mean and std need at least one value")
        if any(s <= 0 for s in std):
            raise ValueError(f"normalize: std must be positive, found {list(std)}")
        self.mean = torch.tensor(list(mean), dtype=torch.float32)
        self.std = torch.tensor(list(std), dtype=torch.float32)
        self.field = field

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean.to(x.dtype)) / self.std.to(x.dtype)).to(x.dtype)

    def __call__(self, sample: Any, rng: np.random.Generator) -> Any:
        return _replace(sample, self.field, self._apply(_field(sample, self.field)))

    def fold(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if self.field >= len(tensors):
            raise DataError(f"normalize field {self.field}: samples have only {len(tensors)} fields")
        out = list(tensors)
        out[self.field] = self._apply(tensors[self.field])
        return tuple(out)


class RandomNoise:
    """Adds ``std``-scaled Gaussian noise to field ``field`` from the sample's keyed RNG."""

    def __init__(self, std: float = 0.1, field: int = 0) -> None:
        self.std = std
        self.field = field

    def __call__(self, sample: Any, rng: np.random.Generator) -> Any:
        x = _field(sample, self.field)
        noise = torch.from_numpy(rng.standard_normal(tuple(x.shape), dtype=np.float32))
        return _replace(sample, self.field, (x + self.std * noise.to(x.dtype)).to(x.dtype))


class Map:
    """A registered function ``fn(sample, rng)`` (or ``fn(batch, rng)`` with ``batch = true``).

    ``fn`` is the name a plugin registered with ``register_functions`` (from Python, the
    function itself); the function pickles by reference into loader workers.
    """

    def __init__(self, fn: Producer, batch: bool = False, registry: Registry | None = None) -> None:
        self.name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
        self.fn = registered_function(fn, registry, "map: function")
        self.level = "batch" if batch else "sample"
        _check_signature(self.fn, self.name, self.level)

    def __call__(self, item: Any, rng: np.random.Generator) -> Any:
        return self.fn(item, rng)


def _check_signature(fn: Callable[..., Any], name: str, level: str) -> None:
    """Fail at build time, not in a loader worker, when ``fn`` cannot be called as fn(x, rng)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins have none to read
        return
    try:
        signature.bind(None, None)
    except TypeError as exc:
        raise DataError(f"map: function {name!r} must take ({level}, rng), but {name}{signature}: {exc}") from None


def shuffle_buffer(size: int = 1000) -> ShuffleBuffer:
    return ShuffleBuffer(size)


def prefetch(processes: int = 2, buffer: int = 2) -> Prefetch:
    return Prefetch(processes, buffer)
