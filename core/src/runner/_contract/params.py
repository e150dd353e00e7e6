"""Declaring component parameters: :func:`param` fields and value constraints (public API)."""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping
from typing import Any

import attrs

#: Marks a parameter that has no default and must be set in the recipe.
REQUIRED: Any = attrs.NOTHING


Check = Callable[[Any], "str | None"]
"""A constraint on a parameter's value: returns an error message, or None when fine."""


def param(
    default: Any = REQUIRED,
    *,
    doc: str = "",
    check: Check | None = None,
    finite: bool = True,
    registered: str | None = None,
    path: bool | str = False,
    **kwargs: Any,
) -> Any:
    """An attrs field carrying documentation and an optional value constraint.

    ``hidden: list[int] = param([256], doc="hidden layer widths")``; mutable defaults
    are copied per instance. ``check=at_least(1)`` rejects smaller values at validation.
    Float values must be finite (no ``inf``/``nan``) unless ``finite=False``.
    ``registered="function"`` makes the value (a string, or a list of strings) the name
    of a registered component of that kind: an unknown name is a recipe error with a
    did-you-mean, and the factory looks the name up (e.g. ``registry.function(name)``).

    ``path=True`` makes the value (a string, or a list of strings) a file the component
    reads: a relative path is resolved against the recipe file that wrote it (the working
    directory for ``-o``), and ``runner recipe check`` reports one that does not exist.
    ``path="glob"``: patterns that must match a file; ``path="output"``: a place the
    component writes, resolved the same way but not checked. A ``pathlib.Path`` field is
    a ``path=True`` parameter unless it says otherwise.
    """
    if path not in (False, True, "glob", "output"):
        raise ValueError(f'param(path=...) takes True, "glob" or "output", found {path!r}')
    metadata: dict[str, Any] = {
        "doc": doc,
        "check": check,
        "finite": finite,
        "registered": registered,
        "path": path,
    }
    if isinstance(default, (list, dict, set)):
        value = default
        return attrs.field(factory=lambda: type(value)(value), metadata=metadata, **kwargs)
    return attrs.field(default=default, metadata=metadata, **kwargs)


def recipe_key(field: attrs.Attribute) -> str:  # type: ignore[type-arg]
    """The recipe key of a declaration's field: its attrs alias (the name without leading
    underscores), and without the trailing underscore that lets a field be named after a
    Python keyword (PEP 8): the field ``async_`` is the recipe key ``async``."""
    key = field.alias or field.name
    return key[:-1] if key.endswith("_") and keyword.iskeyword(key[:-1]) else key


def init_arguments(params: Mapping[str, Any]) -> dict[str, Any]:
    """Recipe keys to the keyword arguments of the declaration's ``__init__`` (the inverse of
    :func:`recipe_key`: a keyword gets its trailing underscore back)."""
    return {f"{key}_" if keyword.iskeyword(key) else key: value for key, value in params.items()}


def at_least(minimum: float) -> Check:
    """Constraint: the value (when set) is ``>= minimum``."""

    def check(value: Any) -> str | None:
        return None if value is None or value >= minimum else f"must be at least {minimum}, found {value}"

    return check


def between(minimum: float, maximum: float) -> Check:
    """Constraint: the value (when set) is ``>= minimum`` and ``<= maximum``."""

    def check(value: Any) -> str | None:
        if value is None or minimum <= value <= maximum:
            return None
        return f"must be between {minimum} and {maximum}, found {value}"

    return check


#: The range of seeds torch, numpy and Python all accept (and that derived seeds stay in).
SEED_RANGE = (0, 2**63 - 1)


def one_of_patterns(*patterns: str) -> Check:
    """Constraint: the string fully matches one of the regular expressions."""
    import re

    def check(value: Any) -> str | None:
        if any(re.fullmatch(p, value) for p in patterns):
            return None
        return f"expected one of {', '.join(patterns)}, found {value!r}"

    return check
