"""Model sizes from recipe parameters, falling back to the training dataset's ``meta``."""

from __future__ import annotations

import math
from typing import Any


def meta_of(ctx: Any) -> dict[str, Any]:
    """``ctx.meta`` (the training dataset's meta) or ``{}`` without a build context."""
    return dict(getattr(ctx, "meta", None) or {}) if ctx is not None else {}


def missing(model: str, params: str, meta: dict[str, Any]) -> ValueError:
    """The error for a size that is neither set nor in the dataset's meta."""
    known = ", ".join(sorted(meta)) or "none"
    return ValueError(
        f"{model}: set {params} in the [model] table; the training dataset's meta does not provide it "
        f"(meta keys: {known})"
    )


def size(model: str, name: str, value: int | None, meta: dict[str, Any]) -> int:
    """``value`` if set, else ``meta[name]``; raises naming the parameter otherwise."""
    if value is not None:
        return value
    if meta.get(name) is not None:
        return int(meta[name])
    raise missing(model, name, meta)


def image_size(model: str, value: list[int] | None, meta: dict[str, Any]) -> tuple[int, int]:
    """``[height, width]`` from the parameter or ``meta["image_size"]`` (an int means square)."""
    found = value if value is not None else meta.get("image_size")
    if found is None:
        raise missing(model, "image_size", meta)
    if isinstance(found, int):
        return found, found
    if len(found) != 2:
        raise ValueError(f"{model}: image_size must be [height, width], found {list(found)}")
    return int(found[0]), int(found[1])


def flat_features(model: str, value: int | None, meta: dict[str, Any]) -> int:
    """Input features of a flat model: the parameter, meta in_features, or in_channels x image_size."""
    if value is not None:
        return value
    if meta.get("in_features") is not None:
        return int(meta["in_features"])
    if meta.get("in_channels") is not None and meta.get("image_size") is not None:
        return int(meta["in_channels"]) * math.prod(image_size(model, None, meta))
    raise missing(model, "in_features", meta)


def outputs(model: str, num_classes: int | None, out_features: int | None, meta: dict[str, Any]) -> int:
    """Output width: num_classes or out_features (not both), else meta num_classes or out_features."""
    if num_classes is not None and out_features is not None and num_classes != out_features:
        raise ValueError(f"{model}: set num_classes or out_features, not both ({num_classes} != {out_features})")
    for value in (num_classes, out_features, meta.get("num_classes"), meta.get("out_features")):
        if value is not None:
            return int(value)
    raise missing(model, "num_classes (classification) or out_features (regression)", meta)
