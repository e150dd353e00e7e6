"""Check TOML values against Python type hints, collecting every problem with its key path.

Supported: ``bool``, ``int``, ``float`` (ints accepted), ``str``, ``pathlib.Path``,
``Literal[...]``, enums, ``X | Y``/``Optional``, ``list[T]``, ``tuple[...]``,
``dict[str, T]``, nested attrs classes, and ``Any``.
"""

from __future__ import annotations

import enum
import functools
import math
import operator
import pathlib
import types
import typing
from typing import Any

import attrs

from runner._contract.suggest import did_you_mean

Issue = tuple[tuple[str | int, ...], str]
"""A problem found: (key path relative to the checked value, message)."""


def describe(tp: Any) -> str:
    """Human name of a type: ``int``, ``list of float``, ``one of 'a', 'b'``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return "any value"
    if tp is type(None):
        return "nothing (leave the key out)"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(a) for a in args if a is not type(None)]
        return " or ".join(parts)
    if origin in (list, typing.List) or origin is getattr(typing, "Sequence", None):  # noqa: UP006
        return f"list of {describe(args[0])}" if args else "list"
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {describe(args[0])}"
        return f"list of {len(args)} values ({', '.join(describe(a) for a in args)})"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return f"table of {describe(args[1])}" if args else "table"
    if isinstance(tp, type):
        if attrs.has(tp):
            return "table"
        if issubclass(tp, enum.Enum):
            return "one of " + ", ".join(repr(m.value) for m in tp)
        if tp is pathlib.Path:
            return "path (string)"
        return tp.__name__
    return str(tp)


def found(value: Any) -> str:
    """How a TOML value is named in messages: ``str "64"``."""
    kind = {
        bool: "bool",
        int: "int",
        float: "float",
        str: "str",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)
    if isinstance(value, int) and value.bit_length() > 64:
        return f"{kind} of {value.bit_length()} bits"  # repr() fails beyond 4300 digits
    if isinstance(value, str) and len(value) > 40:
        value = value[:40]  # not a 10 MB repr to cut
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}"


def check(value: Any, tp: Any, *, finite: bool = True) -> tuple[Any, list[Issue]]:
    """Return ``(converted value, issues)`` for ``value`` against type ``tp``; with
    ``finite`` (the default) a ``float`` must not be inf or nan."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value, []
    if origin is typing.Annotated:
        return check(value, args[0], finite=finite)
    if origin in (typing.Union, types.UnionType):
        return _check_union(value, args, finite)
    if origin is typing.Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value, []
        message = f"expected {describe(tp)}, found {found(value)}"
        if isinstance(value, str):
            hint = did_you_mean(value, [a for a in args if isinstance(a, str)])
            if hint:
                message += f" ({hint})"
        return value, [((), message)]
    if origin in (list, tuple) or origin in _ABSTRACT_SEQUENCES:
        return _check_sequence(value, tp, origin, args, finite)
    if origin in (dict,) or origin in _ABSTRACT_MAPPINGS:
        return _check_mapping(value, tp, args, finite)
    if isinstance(tp, type):
        return _check_plain(value, tp, finite)
    return value, []


_ABSTRACT_SEQUENCES = {typing.get_origin(typing.Sequence[int]), typing.get_origin(typing.List[int])}  # noqa: UP006
_ABSTRACT_MAPPINGS = {typing.get_origin(typing.Mapping[str, int]), typing.get_origin(typing.Dict[str, int])}  # noqa: UP006


def _mismatch(value: Any, tp: Any) -> list[Issue]:
    return [((), f"expected {describe(tp)}, found {found(value)}")]


def _check_union(value: Any, args: tuple[Any, ...], finite: bool) -> tuple[Any, list[Issue]]:
    candidates = [a for a in args if a is not type(None)]
    best: list[Issue] | None = None
    for candidate in candidates:
        converted, issues = check(value, candidate, finite=finite)
        if not issues:
            return converted, []
        # Prefer the deepest explanation (a table that nearly matched), then one about the
        # value (a float that is not finite), over a plain type mismatch.
        if any(path for path, _ in issues) or (best is None and issues != _mismatch(value, candidate)):
            best = issues
    if best is not None:
        return value, best
    return value, _mismatch(value, functools.reduce(operator.or_, candidates))


def _check_sequence(value: Any, tp: Any, origin: Any, args: tuple[Any, ...], finite: bool) -> tuple[Any, list[Issue]]:
    if not isinstance(value, list):
        return value, _mismatch(value, tp)
    issues: list[Issue] = []
    out: list[Any] = []
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            return value, [((), f"expected {describe(tp)}, found {len(value)} values")]
        item_types: list[Any] = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    for index, (item, item_tp) in enumerate(zip(value, item_types, strict=False)):
        converted, sub = check(item, item_tp, finite=finite)
        out.append(converted)
        issues += [((index, *path), msg) for path, msg in sub]
    return (tuple(out) if origin is tuple else out), issues


def _check_mapping(value: Any, tp: Any, args: tuple[Any, ...], finite: bool) -> tuple[Any, list[Issue]]:
    if not isinstance(value, dict):
        return value, _mismatch(value, tp)
    value_tp = args[1] if len(args) == 2 else Any
    issues: list[Issue] = []
    out: dict[str, Any] = {}
    for key, item in value.items():
        converted, sub = check(item, value_tp, finite=finite)
        out[key] = converted
        issues += [((key, *path), msg) for path, msg in sub]
    return out, issues


def _check_plain(value: Any, tp: type, finite: bool) -> tuple[Any, list[Issue]]:
    if attrs.has(tp):
        from runner._schema.fields import schema_from_attrs

        if not isinstance(value, dict):
            return value, _mismatch(value, tp)
        converted, issues = check_table(value, schema_from_attrs(tp).fields, fill_defaults=True)
        return (tp(**converted) if not issues else value), issues
    if tp is bool:
        return value, ([] if isinstance(value, bool) else _mismatch(value, tp))
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return value, _mismatch(value, tp)
        try:
            number = float(value)
        except OverflowError:  # an int beyond float's range
            return value, [((), "number out of range for a float")]
        if finite and not math.isfinite(number):
            return value, [((), f"expected a finite number, found {found(value)}")]
        return number, []
    if tp is int:
        return value, ([] if isinstance(value, int) and not isinstance(value, bool) else _mismatch(value, tp))
    if tp is pathlib.Path:
        return (pathlib.Path(value), []) if isinstance(value, str) else (value, _mismatch(value, tp))
    if issubclass(tp, enum.Enum):
        for member in tp:
            if isinstance(value, bool) and not isinstance(member.value, bool):
                continue  # TOML true is not 1
            if value == member.value or value == member.name:
                return member, []
        message = f"expected {describe(tp)}, found {found(value)}"
        hint = did_you_mean(str(value), [str(m.value) for m in tp])
        return value, [((), f"{message} ({hint})" if hint else message)]
    if isinstance(value, tp):
        return value, []
    return value, _mismatch(value, tp)


def check_table(
    table: dict[str, Any],
    fields: dict[str, Any],
    *,
    fill_defaults: bool = True,
    open_table: bool = False,
    ignore: frozenset[str] = frozenset(),
) -> tuple[dict[str, Any], list[Issue]]:
    """Check a table against ``{name: Field}``: unknown keys (with did-you-mean), missing
    required keys, and every value's type. Returns the converted table with defaults.
    """
    from runner._contract.params import REQUIRED

    issues: list[Issue] = []
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key in ignore:
            continue
        spec = fields.get(key)
        if spec is None:
            if open_table:
                out[key] = value
                continue
            hint = did_you_mean(key, fields)
            known = ", ".join(sorted(fields)) or "none"
            issues.append(((key,), f"unknown key ({hint})" if hint else f"unknown key; accepted keys: {known}"))
            continue
        converted, sub = check(value, spec.type, finite=spec.finite)
        if not sub and spec.check is not None:
            message = spec.check(converted)
            if message:
                sub = [((), message)]
        out[key] = converted
        issues += [((key, *path), msg) for path, msg in sub]
    for name, spec in fields.items():
        if name in table or name in ignore:
            continue
        if spec.default is REQUIRED:
            issues.append(((name,), f"missing required key (expected {describe(spec.type)})"))
        elif fill_defaults:
            out[name] = spec.default
    return out, issues
