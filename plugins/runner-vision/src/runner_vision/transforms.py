"""The ``torchvision`` sample transform: a transforms v2 pipeline declared in the recipe.

torchvision's random transforms draw from torch's global generator. Here every call
seeds a forked copy of it from the sample's ``rng`` (keyed by seed, epoch and sample
index), so augmentations are the same for any ``num_workers``, whichever worker fetches a
sample, and after a resume; the global generator is left as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from runner import DataError, import_torchvision
from runner_vision.allowlist import V2_TRANSFORMS, problems


def _v2() -> Any:
    import_torchvision()
    from torchvision.transforms import v2

    return v2


def _converted(key: str, value: Any) -> Any:
    v2 = _v2()
    if key == "dtype":
        return getattr(torch, value)
    if key == "interpolation":
        return v2.InterpolationMode(value)
    if key == "policy":
        return v2.AutoAugmentPolicy(value)
    if isinstance(value, list):  # TOML arrays: torchvision expects tuples or sequences
        return tuple(value)
    return value


def build_pipeline(specs: list[dict[str, Any]]) -> Callable[[Any], Any]:
    """``v2.Compose`` of the allow-listed transforms ``specs`` (tables with ``name`` and arguments)."""
    found = problems(specs)
    if found:
        raise DataError(f"torchvision transforms: {'; '.join(found)}")
    v2 = _v2()
    built = []
    for index, spec in enumerate(specs):
        name = spec["name"]
        kwargs = {k: _converted(k, v) for k, v in spec.items() if k != "name"}
        try:
            built.append(getattr(v2, name)(**kwargs))
        except (TypeError, ValueError) as exc:
            raise DataError(f"torchvision transforms[{index}] ({name}): {exc}") from None
    composed: Callable[[Any], Any] = v2.Compose(built)
    return composed


class TorchvisionTransform:
    """Applies the pipeline to field ``field`` of each sample (an image tensor ``(C, H, W)``).

    The pipeline is built in each process on first use and never pickled: loader workers
    started by ``spawn`` rebuild it from the recipe's tables.
    """

    level = "sample"

    def __init__(self, transforms: list[dict[str, Any]], field: int = 0) -> None:
        self.specs = [dict(spec) for spec in transforms]
        self.field = field
        self._pipeline: Callable[[Any], Any] | None = build_pipeline(self.specs)  # fail at build, not mid-epoch

    def __getstate__(self) -> dict[str, Any]:
        return {"specs": self.specs, "field": self.field}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.specs, self.field, self._pipeline = state["specs"], state["field"], None

    def __call__(self, sample: Any, rng: np.random.Generator) -> Any:
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.specs)
        single = isinstance(sample, torch.Tensor)
        if not single and not (isinstance(sample, (tuple, list)) and self.field < len(sample)):
            raise DataError(
                f"torchvision transform: expected an image tensor or a tuple with field {self.field}, "
                f"found {type(sample).__name__}"
            )
        image = sample if single else sample[self.field]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            out = self._pipeline(image)
        if single:
            return out
        items = list(sample)
        items[self.field] = out
        return tuple(items) if isinstance(sample, tuple) else items


__all__ = ["V2_TRANSFORMS", "TorchvisionTransform", "build_pipeline"]
