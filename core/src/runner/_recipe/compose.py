"""Composition: a recipe that extends others and merges in component groups.

::

    extends = "base.toml"                 # or ["base.toml", "cluster.toml"], merged in order
    defaults = ["model/mlp", "optimizer/adamw"]

``extends`` names recipe files relative to this one. Each ``defaults`` entry
``GROUP/OPTION`` is the file ``GROUP/OPTION.toml`` in this recipe's directory or the
nearest parent directory that has it; its content is the table at ``GROUP``
(``model/mlp.toml`` holds ``name = "mlp"`` and the mlp's parameters; ``data/train/digits``
fills ``[data.train]``). The order: the extended recipes, then the defaults, then the
file's own keys, each merged over what came before:

- tables merge key by key; arrays (arrays of tables too) and other values replace;
- a component table whose ``name`` changes is replaced: the old component's parameters
  are dropped (the keys every component of its kind has, such as a ``[[process]]``
  step's ``inputs`` or a loader's standard keys, stay), and a note says so.

Every value keeps the location of the file and line that wrote it, through any depth of
includes; a file that includes itself again (a cycle) is an error.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import attrs

from runner._contract import grammar
from runner._contract.errors import Problem, RecipeError, RunnerError
from runner._recipe.locate import KeyPath, Location, SourceMap, locate

#: The longest chain of includes (a cycle is caught sooner; this bounds a long honest chain).
MAX_DEPTH = 32
MAX_SHOWN_PATH = 200


@attrs.define
class Composed:
    """The merged tree, where each value came from, and what merging dropped."""

    data: dict[str, Any]
    sources: SourceMap
    notes: list[str] = attrs.Factory(list)
    files: list[str] = attrs.Factory(list)


def shown(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= MAX_SHOWN_PATH else text[:MAX_SHOWN_PATH] + "..."


def _read(path: Path, where: Problem | None) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if where is None:
            raise RunnerError(f"recipe file {shown(path)} not found") from None
        raise RecipeError([attrs.evolve(where, message=f"{where.message}: no such file {shown(path)}")]) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        message = f"cannot read recipe file {shown(path)}: {type(exc).__name__}"
        if where is None:
            raise RunnerError(message) from None
        raise RecipeError([attrs.evolve(where, message=f"{where.message}: {message}")]) from None


def compose(path: str | Path, parse: Any) -> Composed:
    """Read ``path`` with everything it extends and includes, merged (``parse(text, file)``
    parses one file's TOML)."""
    return _compose(str(path), parse, (), None)


def _location_problem(sources: SourceMap, key: KeyPath, message: str) -> Problem:
    location = sources.find(key)
    return Problem(".".join(str(k) for k in key), message, location.file, location.line, location.column)


def _compose(file: str, parse: Any, chain: tuple[str, ...], where: Problem | None) -> Composed:
    real = str(Path(file).resolve())
    if real in chain:
        assert where is not None
        cycle = " -> ".join(shown(Path(f).name) for f in (*chain, real)[chain.index(real) :])
        raise RecipeError([attrs.evolve(where, message=f"include cycle: {cycle}")])
    if len(chain) >= MAX_DEPTH:
        assert where is not None
        raise RecipeError([attrs.evolve(where, message=f"includes nested deeper than {MAX_DEPTH} files")])
    text = _read(Path(file), where)
    data = parse(text, file)
    own = Composed(data, locate(text, file), files=[file])
    extends = data.pop("extends", None)
    defaults = data.pop("defaults", None)
    merged = Composed({}, SourceMap(default=Location(file)), files=[])
    here = Path(file).parent
    for index, target in enumerate(_names(own.sources, "extends", extends)):
        at = _location_problem(own.sources, ("extends",) if isinstance(extends, str) else ("extends", index), "extends")
        include = _compose(str(here / target), parse, (*chain, real), at)
        merge(merged, include)
    for index, entry in enumerate(_names(own.sources, "defaults", defaults)):
        at = _location_problem(own.sources, ("defaults", index), f"defaults {entry!r}")
        group, _, option = entry.rpartition("/")
        if not group or not option or any(part in ("", ".", "..") for part in entry.split("/")):
            raise RecipeError([attrs.evolve(at, message=f"{at.message}: expected GROUP/OPTION, e.g. model/mlp")])
        found = _find_group(here, f"{entry}.toml")
        if found is None:
            message = f"{at.message}: no {entry}.toml in {shown(here)} or a directory above it"
            raise RecipeError([attrs.evolve(at, message=message)])
        include = _compose(str(found), parse, (*chain, real), at)
        merge(merged, _placed(include, tuple(group.split("/"))))
    merge(merged, own)
    merged.sources.default = Location(file)
    return merged


def _names(sources: SourceMap, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) and key == "extends" else value
    # Control characters are no file names: a NUL byte the OS refuses with ValueError (not
    # OSError), a newline would break the one-line error.
    if not isinstance(items, list) or not all(isinstance(item, str) and item and _printable(item) for item in items):
        expected = "a file name or an array of them" if key == "extends" else 'an array of "GROUP/OPTION" names'
        raise RecipeError([_location_problem(sources, (key,), f"expected {expected}")])  # the key path names the key
    return items


def _printable(name: str) -> bool:
    return not any(ord(char) < 32 or char == "\x7f" for char in name)


def _find_group(start: Path, relative: str) -> Path | None:
    """``relative`` under ``start`` or its nearest parent that has it."""
    import os

    for directory in [start.resolve(), *start.resolve().parents]:
        candidate = directory / relative
        if candidate.is_file():
            shown = os.path.relpath(candidate)
            return Path(shown) if not shown.startswith("..") else candidate
    return None


def _placed(include: Composed, at: KeyPath) -> Composed:
    """A group file's content put at ``at`` (``model`` for ``model/mlp``)."""
    data: dict[Any, Any] = include.data
    for part in reversed(at):
        data = {part: data}
    sources = SourceMap(default=include.sources.default)
    for path, location in include.sources.locations.items():
        sources.locations[at + path] = location
    for n in range(1, len(at) + 1):
        sources.locations.setdefault(at[:n], include.sources.default)
    return Composed(data, sources, include.notes, include.files)


def kept_on_switch(path: KeyPath) -> tuple[str, ...] | None:
    """When the table at ``path`` names a component: the keys that stay when its name
    changes (framework keys); None when it is not a component table."""
    node = grammar.node_at(path)
    if isinstance(node, grammar.Component) and node.chosen_by is None:
        return node.framework_keys
    if isinstance(node, grammar.Fields) and node.component is not None:
        return tuple(a.alias or a.name for a in attrs.fields(node.cls))
    return None


def _where(sources: SourceMap, path: KeyPath) -> str:
    location = sources.find(path)
    return f"{location.file}:{location.line}" if location.line is not None else location.file


def merge(base: Composed, over: Composed, path: KeyPath = ()) -> None:
    """Merge ``over`` into ``base`` (see the module documentation for the rules)."""
    if not path:
        base.notes.extend(over.notes)
        base.files.extend(f for f in over.files if f not in base.files)
    node: Any = base.data
    other: Any = over.data
    for part in path:
        node, other = node[part], other[part]
    for key, value in other.items():
        where = (*path, key)
        old = node.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            kept = kept_on_switch(where)
            if kept is not None and "name" in value and "name" in old and value["name"] != old["name"]:
                dropped = [k for k in old if k not in kept and k != "name" and k not in value]
                if dropped:
                    base.notes.append(
                        f"{'.'.join(map(str, where))}: {old['name']!r} -> {value['name']!r} "
                        f"({_where(over.sources, (*where, 'name'))}) dropped {', '.join(dropped)} "
                        f"(from {_where(base.sources, where)})"
                    )
                for k in dropped:
                    del old[k]
                    _forget(base.sources, (*where, k))
            merge(base, over, where)
            if where in over.sources.locations:
                base.sources.locations[where] = over.sources.locations[where]
            continue
        node[key] = copy.deepcopy(value)
        _forget(base.sources, where)
        for known, location in over.sources.locations.items():
            if known[: len(where)] == where:
                base.sources.locations[known] = location


def _forget(sources: SourceMap, path: KeyPath) -> None:
    for known in [p for p in sources.locations if p[: len(path)] == path]:
        del sources.locations[known]
