"""Interpolation: ``${run.seed}``, ``${data.train.loader.batch_size}``, ``${env:VAR,default}``.

Resolved after composition and overrides, before validation. A string that is exactly
one reference takes the referenced value with its type (``seed = "${run.seed}"`` is an
int); a reference inside text is replaced by the value's text (``name =
"mlp-${model.hidden.0}"``). References follow dotted key paths of the recipe (integers
index arrays); a core key left out refers to its default (``${run.seed}`` is 0 when no
seed is written). ``${env:VAR}`` reads an environment variable, ``${env:VAR,default}``
with a default; a whole-string one is read as a TOML value (``"${env:EPOCHS,3}"`` is the
int 3), bare words as strings. ``$${`` writes a literal ``${``. Nothing is evaluated:
there are no expressions, only look-ups. Problems are located at the referencing value.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from typing import Any

from runner._contract import grammar
from runner._contract.errors import Problem, RecipeError
from runner._contract.suggest import did_you_mean
from runner._recipe.locate import KeyPath, SourceMap

REFERENCE = re.compile(r"\$\$\{|\$\{([^${}]*)\}")
#: The longest text interpolation may build, and the longest chain of references.
MAX_TEXT = 100_000
MAX_CHAIN = 32


class _Unresolved(Exception):
    pass


def _strings(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    stack: list[tuple[KeyPath, Any]] = [(path, node)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if "${" in value:
                yield where, value
        elif isinstance(value, dict):
            stack.extend(((*where, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*where, i), v) for i, v in enumerate(value))


def _parse_ref(text: str) -> KeyPath:
    parts: list[str | int] = []
    for part in text.strip().split("."):
        if not part:
            raise _Unresolved(f"${{{text}}}: empty key")
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def _default(path: KeyPath) -> Any:
    """The default of a core key left out (``run.seed``), else raise."""
    node = grammar.node_at(path[:-1])
    if isinstance(node, grammar.Fields) and isinstance(path[-1], str):
        from runner._schema.fields import schema_from_attrs

        field = schema_from_attrs(node.cls).fields.get(path[-1])
        if field is not None and not field.required and field.default is not None:
            return field.default
    raise KeyError(path)


def _env_value(raw: str) -> Any:
    from runner._recipe.values import parse_value

    try:
        return parse_value(raw)
    except ValueError:
        return raw


class _Interpolator:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.done: dict[KeyPath, Any] = {}

    def lookup(self, ref: str, chain: tuple[KeyPath, ...], whole: bool) -> Any:
        if ref.startswith("env:"):
            name, comma, default = ref[4:].partition(",")
            name = name.strip()
            if not name:
                raise _Unresolved(f"${{{ref}}}: name the environment variable, e.g. ${{env:HOME}}")
            value = os.environ.get(name)
            if value is None:
                if not comma:
                    hint = f"${{env:{name},default}}"
                    raise _Unresolved(f"${{{ref}}}: environment variable {name} is not set (give a default: {hint})")
                value = default
            return _env_value(value) if whole else value
        if ":" in ref:
            raise _Unresolved(f"${{{ref}}}: unknown resolver {ref.partition(':')[0]!r} (only env: is known)")
        path = _parse_ref(ref)
        node: Any = self.data
        for depth, part in enumerate(path):
            child = _child(node, part)
            if child is not _MISSING:
                node = child
            else:
                try:
                    return _default(path)
                except KeyError:
                    options = [str(k) for k in node] if isinstance(node, dict) else []
                    hint = did_you_mean(str(part), options)
                    shown = ".".join(map(str, path[: depth + 1]))
                    message = f"${{{ref}}}: no key {shown} in the recipe" + (f" ({hint})" if hint else "")
                    raise _Unresolved(message) from None
        if isinstance(node, str) and "${" in node:
            return self.resolve(path, node, chain)
        return copy.deepcopy(node)

    def resolve(self, path: KeyPath, text: str, chain: tuple[KeyPath, ...] = ()) -> Any:
        if path in self.done:
            return self.done[path]
        if path in chain:
            cycle = " -> ".join(".".join(map(str, p)) for p in (*chain[chain.index(path) :], path))
            raise _Unresolved(f"references form a cycle: {cycle}")
        if len(chain) >= MAX_CHAIN:
            raise _Unresolved(f"references nested deeper than {MAX_CHAIN}")
        chain = (*chain, path)
        whole = REFERENCE.fullmatch(text)
        if whole is not None and whole.group(1) is not None:
            value = self.lookup(whole.group(1), chain, whole=True)
        else:
            pieces: list[str] = []
            last = 0
            for match in REFERENCE.finditer(text):
                pieces.append(text[last : match.start()])
                if match.group(1) is None:  # $${ is a literal ${
                    pieces.append("${")
                else:
                    found = self.lookup(match.group(1), chain, whole=False)
                    if isinstance(found, (dict, list)):
                        what = "a table" if isinstance(found, dict) else "an array"
                        raise _Unresolved(f"${{{match.group(1)}}} is {what}: only a whole value can refer to it")
                    pieces.append(_text(found))
                if sum(map(len, pieces)) > MAX_TEXT:
                    raise _Unresolved(f"interpolation makes a string longer than {MAX_TEXT} characters")
                last = match.end()
            pieces.append(text[last:])
            value = "".join(pieces)
        self.done[path] = value
        return value


_MISSING = object()


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part, _MISSING)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return _MISSING


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return str(value)
    except ValueError:  # an integer beyond Python's 4300-digit text limit
        raise _Unresolved(f"a number too large to put in text: {type(value).__name__}") from None


def _set(data: Any, path: KeyPath, value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def interpolate(data: dict[str, Any], sources: SourceMap) -> None:
    """Resolve every reference in ``data`` in place; raise :class:`RecipeError` with every
    problem, each at the value that refers."""
    interpolator = _Interpolator(data)
    problems: list[Problem] = []
    resolved: list[tuple[KeyPath, Any]] = []
    for path, text in sorted(_strings(data), key=lambda item: [str(p) for p in item[0]]):
        try:
            resolved.append((path, interpolator.resolve(path, text)))
        except _Unresolved as exc:
            location = sources.find(path)
            shown = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))
            problems.append(Problem(shown, str(exc), location.file, location.line, location.column))
    if problems:
        raise RecipeError(problems)
    for path, value in resolved:
        _set(data, path, value)


__all__ = ["interpolate"]
