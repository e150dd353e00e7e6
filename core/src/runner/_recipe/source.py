"""Reading a recipe: its file and includes (composition), ``-o key.path=value`` overrides
and ``${...}`` interpolation, in that order; no validation yet."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from runner._contract.errors import Problem, RecipeError
from runner._recipe.limits import MAX_NESTING, long_integer_position, nesting_position, value_problems
from runner._recipe.locate import KeyPath, Location, SourceMap
from runner._recipe.values import parse_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

_POSITION = re.compile(r"\(at (?:line (\d+), column (\d+)|end of document)\)")
COMMAND_LINE = "<command line>"


@attrs.define
class RecipeSource:
    """A parsed recipe tree with the location of every key."""

    path: str
    data: dict[str, Any]
    sources: SourceMap
    problems: list[Problem] = attrs.Factory(list)
    """Overrides that could not be applied (``read_recipe(..., collect=True)``); validation
    reports them with the recipe's own problems."""
    notes: list[str] = attrs.Factory(list)
    """What composition and overrides dropped (a component switched to another name)."""
    files: list[str] = attrs.Factory(list)
    """Every recipe file read: this one and those it includes."""

    @property
    def directory(self) -> Path:
        return Path(self.path).resolve().parent

    def base_dir(self, path: KeyPath) -> Path:
        """The directory a relative path at ``path`` is relative to: that of the recipe
        file which wrote it (an included file's own), or the working directory for ``-o``."""
        location = self.sources.find(path)
        if location.file.startswith(COMMAND_LINE):
            return Path.cwd()
        return Path(location.file).resolve().parent

    def problem(self, path: KeyPath, message: str) -> Problem:
        """A problem at ``path``, located where the recipe (or an override) wrote it."""
        location = self.sources.find_written(path)
        return Problem(format_path(path), message, location.file, location.line, location.column)


def format_path(path: Iterable[str | int]) -> str:
    """``("callbacks", 0, "name")`` → ``callbacks[0].name``. Keys with line breaks or other
    control characters are shown escaped, and very long ones cut: a problem is one line."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = _shown_key(str(part))
            out += f".{key}" if out else key
    return out


_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
MAX_KEY = 200


def _shown_key(key: str) -> str:
    if len(key) > MAX_KEY:
        key = key[:MAX_KEY] + "..."
    return repr(key) if _CONTROL.search(key) else key


def parse_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML, turning a syntax error (or nesting or an integer literal too large to
    read) into a located :class:`RecipeError`."""
    deep = nesting_position(text)
    if deep is not None:
        message = f"arrays and tables nested deeper than {MAX_NESTING} levels"
        raise RecipeError([Problem("", message, file, *deep)])
    try:
        data: dict[str, Any] = tomllib.loads(text)
        return data
    except RecursionError:  # a stack already deep when parsing began; nesting_position bounds the rest
        message = f"arrays and tables nested too deeply (at most {MAX_NESTING} levels)"
        raise RecipeError([Problem("", message, file)]) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _POSITION.search(message)
        line = column = None
        if match:
            if match.group(1):
                line, column = int(match.group(1)), int(match.group(2))
            else:  # an unclosed array or string: point at the end of the file
                line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
            message = message[: match.start()].strip()
        raise RecipeError([Problem("", f"TOML syntax error: {message}", file, line, column)]) from None
    except ValueError as exc:  # Python refuses to read integers of more than 4300 digits
        long = long_integer_position(text)
        if long is None:
            raise RecipeError([Problem("", f"cannot read TOML: {exc}", file)]) from None
        line, column, digits = long
        message = f"integer with {digits} digits: TOML integers are 64-bit (at most 19 digits)"
        raise RecipeError([Problem("", message, file, line, column)]) from None


def read_recipe(path: str | Path, overrides: Iterable[str] = (), *, collect: bool = False) -> RecipeSource:
    """Read ``path`` with what it extends and includes, apply overrides, then resolve
    ``${...}`` references. Every bad override is reported together: raised at once, or
    with ``collect`` kept in ``source.problems`` for :func:`validate` to report next to
    the recipe's own problems."""
    from runner._recipe.compose import compose
    from runner._recipe.interpolate import interpolate

    file = str(path)
    composed = compose(file, parse_toml)
    source = RecipeSource(file, composed.data, composed.sources, notes=composed.notes, files=composed.files)
    problems = [p for p in (apply_override(source, item) for item in overrides) if p is not None]
    interpolate(source.data, source.sources)
    # Values nothing downstream can handle are reported alone, like a syntax error.
    limits = [source.problem(path, message) for path, message in value_problems(source.data)]
    if limits:
        raise RecipeError([*problems, *limits])
    if problems and not collect:
        raise RecipeError(problems)
    source.problems.extend(problems)
    return source


def parse_override(item: str) -> tuple[KeyPath, Any]:
    """``"a.b.0.c=1e-3"`` → ``(("a", "b", 0, "c"), 0.001)``; values as :func:`parse_value` reads them."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError("expected key.path=value")
    parts: list[str | int] = []
    for part in key.strip().split("."):
        if not part:
            raise ValueError(f"empty key in {key.strip()!r}")
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts), parse_value(raw)


def apply_override(source: RecipeSource, item: str) -> Problem | None:
    """Set one override into ``source``; return a problem (located on the command line)
    instead of raising. Missing tables on the path are created, an array grows by one
    item at index ``len``, and setting a component table's ``name`` to another component
    drops the old one's parameters that the files wrote (with a note)."""
    shown = item if len(item) <= 80 else item[:77] + "..."
    location = Location(f"{COMMAND_LINE} -o {_CONTROL.sub(lambda m: repr(m.group())[1:-1], shown)}")
    try:
        path, value = parse_override(item)
    except ValueError as exc:
        return Problem("", f"bad override: {exc}", location.file)
    # Check the whole path before changing anything: a failed override leaves no trace.
    node: Any = source.data
    created: KeyPath | None = None
    for depth, part in enumerate(path):
        where = path[: depth + 1]
        last = depth == len(path) - 1
        if created is not None:  # inside a table or array this override creates: it starts empty
            if isinstance(part, int) and part != 0:
                return Problem(format_path(where), "bad override: no such item to descend into", location.file)
            continue
        child = _child(node, part)
        if child is None:
            if not _can_add(node, part):
                message = "bad override: no such item" + ("" if last else " to descend into")
                return Problem(format_path(where), message, location.file)
            created = where if not last else None
            continue
        if not last and not isinstance(child, (dict, list)):
            return Problem(format_path(where), "bad override: not a table", location.file)
        node = child
    node = source.data
    for depth, part in enumerate(path[:-1]):
        child = _child(node, part)
        if child is None:
            child = [] if isinstance(path[depth + 1], int) else {}
            _assign(node, part, child)
        node = child
    if path[-1] == "name" and isinstance(node, dict):
        _switch_component(source, path[:-1], node, value)
    _assign(node, path[-1], value)
    source.sources.override(created if created is not None else path, location)
    return None


def _can_add(node: Any, part: str | int) -> bool:
    return (isinstance(node, dict) and isinstance(part, str)) or (
        isinstance(node, list) and isinstance(part, int) and part <= len(node)
    )


def _switch_component(source: RecipeSource, table_path: KeyPath, table: dict[str, Any], name: Any) -> None:
    """``-o model.name=other``: the old component's parameters written in files go."""
    from runner._recipe.compose import kept_on_switch

    kept = kept_on_switch(table_path)
    old = table.get("name")
    if kept is None or old is None or old == name:
        return
    dropped = [
        key
        for key in table
        if key != "name"
        and key not in kept
        and not source.sources.find((*table_path, key)).file.startswith(COMMAND_LINE)
    ]
    for key in dropped:
        del table[key]
    if dropped:
        source.notes.append(
            f"{format_path(table_path)}: {old!r} -> {name!r} (command line) dropped {', '.join(dropped)}"
        )


def _assign(node: Any, key: str | int, value: Any) -> bool:
    if isinstance(node, dict) and isinstance(key, str):
        node[key] = value
        return True
    if isinstance(node, list) and isinstance(key, int) and key < len(node):
        node[key] = value
        return True
    if isinstance(node, list) and isinstance(key, int) and key == len(node):
        node.append(value)
        return True
    return False


def _child(node: Any, part: str | int) -> Any:
    if isinstance(node, dict) and isinstance(part, str):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None
