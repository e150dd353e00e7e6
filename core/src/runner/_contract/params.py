"""Declaring component parameters: :func:`param` fields and value constraints (public API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

#: Marks a parameter that has no default and must be set in the recipe.
REQUIRED: Any = attrs.NOTHING


Check = Callable[[Any], "str | None"]
"""A constraint on a parameter's value: returns an error message, or None when fine."""


def param(default: Any = REQUIRED, *, doc: str = "", check: Check | None = None, **kwargs: Any) -> Any:
    """An attrs field carrying documentation and an optional value constraint.

    ``hidden: list[int] = param([256], doc="hidden layer widths")``; mutable defaults
    are copied per instance. ``check=at_least(1)`` rejects smaller values at validation.
    """
    metadata = {"doc": doc, "check": check}
    if isinstance(default, (list, dict, set)):
        value = default
        return attrs.field(factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return attrs.field(default=default, metadata=metadata, **kwargs)


def at_least(minimum: float) -> Check:
    """Constraint: the value (when set) is ``>= minimum``."""

    def check(value: Any) -> str | None:
        return None if value is None or value >= minimum else f"must be at least {minimum}, found {value}"

    return check


def one_of_patterns(*patterns: str) -> Check:
    """Constraint: the string fully matches one of the regular expressions."""
    import re

    def check(value: Any) -> str | None:
        if any(re.fullmatch(p, value) for p in patterns):
            return None
        return f"expected one of {', '.join(patterns)}, found {value!r}"

    return check
