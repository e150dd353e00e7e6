"""Value constraints for recipe parameters, beyond :func:`runner.at_least`."""

from __future__ import annotations

from typing import Any


def probability(value: Any) -> str | None:
    """Constraint: ``0 <= value < 1`` (dropout rates, momentum)."""
    return None if 0 <= value < 1 else f"must be at least 0 and below 1, found {value}"


def unit_interval(value: Any) -> str | None:
    """Constraint: ``0 <= value <= 1`` (label smoothing)."""
    return None if 0 <= value <= 1 else f"must be between 0 and 1, found {value}"


def positive_sizes(value: Any) -> str | None:
    """Constraint: a list of sizes, each at least 1 (None allowed)."""
    if value is None or all(size >= 1 for size in value):
        return None
    return f"every size must be at least 1, found {list(value)}"


def height_width(value: Any) -> str | None:
    """Constraint: ``[height, width]``, both at least 1 (None allowed)."""
    if value is None:
        return None
    if len(value) != 2:
        return f"expected [height, width], found {len(value)} values"
    return positive_sizes(value)


def betas(value: Any) -> str | None:
    """Constraint: both Adam betas in [0, 1)."""
    if all(0 <= beta < 1 for beta in value):
        return None
    return f"each beta must be at least 0 and below 1, found {list(value)}"
