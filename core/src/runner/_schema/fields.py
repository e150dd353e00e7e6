"""Parameter schemas of components, read from attrs classes or factory signatures."""

from __future__ import annotations

import inspect
import pathlib
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from runner._contract.params import REQUIRED, Check, recipe_key


@attrs.frozen
class Field:
    """One recipe parameter: its name, type, default (``REQUIRED`` if none) and doc."""

    name: str
    type: Any
    default: Any = REQUIRED
    doc: str = ""
    check: Check | None = None
    finite: bool = True
    """Whether float values must be finite (``param(finite=False)`` allows inf and nan)."""
    registered: str | None = None
    """The component kind whose registered names the value holds (``param(registered=...)``)."""
    path: bool | str = False
    """A file the component reads (True), patterns (``"glob"``) or a place it writes (``"output"``)."""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@attrs.frozen
class ParamSchema:
    """The parameters a component accepts. ``open`` schemas accept unknown keys too."""

    fields: dict[str, Field]
    open: bool = False

    def defaults(self) -> dict[str, Any]:
        """Defaults of the optional parameters."""
        return {name: f.default for name, f in self.fields.items() if not f.required}


def _type_hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # unresolved forward references: fall back to raw annotations
        return dict(getattr(obj, "__annotations__", {}))


def _path_kind(declared: Any, tp: Any) -> bool | str:
    """``param(path=...)``, or True for a field typed ``pathlib.Path`` (``Path | None`` too)."""
    if declared:
        return declared  # type: ignore[no-any-return]
    options = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return any(option is pathlib.Path for option in options)


def schema_from_attrs(cls: type) -> ParamSchema:
    """Schema of an attrs class; nested attrs classes become nested tables."""
    hints = _type_hints(cls)
    fields: dict[str, Field] = {}
    for a in attrs.fields(cls):
        if a.default is attrs.NOTHING:
            default = REQUIRED
        elif isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            default = a.default.factory()  # type: ignore[attr-defined]
        else:
            default = a.default
        fields[recipe_key(a)] = Field(
            name=recipe_key(a),
            type=hints.get(a.name, a.type if a.type is not None else Any),
            default=default,
            doc=str(a.metadata.get("doc", "")),
            check=a.metadata.get("check"),
            finite=bool(a.metadata.get("finite", True)),
            registered=a.metadata.get("registered"),
            path=_path_kind(a.metadata.get("path", False), hints.get(a.name, a.type)),
        )
    return ParamSchema(fields)


def schema_from_callable(func: Callable[..., Any], excluded: Iterable[str] = ()) -> ParamSchema:
    """Schema of a factory's keyword parameters, minus runtime arguments in ``excluded``."""
    skip = set(excluded)
    target = func.__init__ if inspect.isclass(func) else func  # type: ignore[misc]
    hints = _type_hints(target)
    fields: dict[str, Field] = {}
    is_open = False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            is_open = True
            continue
        if p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY) or p.name in skip:
            continue
        default = REQUIRED if p.default is p.empty else p.default
        fields[p.name] = Field(name=p.name, type=hints.get(p.name, Any), default=default)
    return ParamSchema(fields, open=is_open)


def accepted_runtime_args(func: Callable[..., Any], offered: set[str]) -> set[str]:
    """Which of the ``offered`` runtime argument names ``func`` declares."""
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return set(offered)
    return offered & set(params)
