"""Transforms for a split's ``transforms = [...]`` pipeline (see ``runner._data.transforms``).

Random transforms draw only from the ``rng`` they are given, which the framework keys by
(seed, epoch, sample index): outputs are the same for any ``num_workers`` and across resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from runner import DataError
from runner._plugins.registry import resolve_reference


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
    """A user function ``fn(sample, rng)`` (or ``fn(batch, rng)`` with ``batch = true``)."""

    def __init__(self, fn: str, batch: bool = False) -> None:
        self.reference = fn
        self.fn = resolve_reference(fn)
        self.level = "batch" if batch else "sample"

    def __call__(self, item: Any, rng: np.random.Generator) -> Any:
        return self.fn(item, rng)

    def __getstate__(self) -> dict[str, Any]:  # pickle the reference, not the function
        return {"reference": self.reference, "level": self.level}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.reference, self.level = state["reference"], state["level"]
        self.fn = resolve_reference(self.reference)
