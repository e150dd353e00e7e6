"""What a ``[[process]]`` step processes, and the shards it is cut into.

A step's list (PyMarlin's ``multi_process_data`` splits any list argument) is its
``inputs`` followed by its ``items``:

- ``inputs``: files and glob patterns (expanded, sorted, relative ones against the
  recipe's directory) and URLs (``scheme://...``), which are passed through untouched;
- ``items``: any values (ids, records, numbers, strings), passed through untouched.

The list is cut into shards of ``shard_size`` entries. A shard's cache key hashes each
file's *content*, and each URL's or item's *value* (canonical JSON): a changed file is
re-processed, while a URL whose remote content changed is not (change the URL, or the
processor's parameters, to fetch it again).
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner._contract.errors import DataError
from runner._contract.recipe import ComponentConfig, ProcessConfig
from runner._processing.cache import canonical, file_hash, shard_key
from runner._processing.shards import Shard
from runner._recipe.paths import is_url


def expand_inputs(patterns: Sequence[str], where: str, base_dir: Path | None = None) -> list[str]:
    """Files named by ``patterns`` (globs expanded, sorted; relative ones against
    ``base_dir``, the recipe's directory), URLs as they are; missing files are errors."""
    files: list[str] = []
    for raw in patterns:
        if is_url(raw):
            files.append(raw)
            continue
        pattern = str(base_dir / raw) if base_dir is not None and not Path(raw).is_absolute() else raw
        if glob.has_magic(pattern):
            matched = sorted(glob.glob(pattern, recursive=True))
            if not matched:
                raise DataError(f"{where}: inputs pattern {pattern!r} matched no files")
            files += [m for m in matched if Path(m).is_file()]
        elif not Path(pattern).is_file():
            raise DataError(f"{where}: input file {pattern!r} does not exist")
        else:
            files.append(pattern)
    return files


def value_hash(value: Any) -> str:
    """The hash of an item or URL in a shard key: its canonical JSON, marked as a value so
    it never equals a file's content hash."""
    return hashlib.sha256(("item:" + canonical(value)).encode()).hexdigest()


def entry_hashes(entries: Sequence[Any], files: set[str]) -> list[str]:
    """One hash per entry: a file's content hash, else its value's."""
    return [file_hash(Path(e)) if isinstance(e, str) and e in files else value_hash(e) for e in entries]


def plan_shards(
    step: ComponentConfig, keys: ProcessConfig, plugin: str, where: str, base_dir: Path | None = None
) -> list[Shard]:
    """The step's shards, in order, each with its content-addressed key (see the module
    documentation); a step with neither inputs nor items is one shard of ``[]``."""
    expanded = expand_inputs(keys.inputs, where, base_dir)
    files = {e for e in expanded if not is_url(e)}
    entries: list[Any] = [*expanded, *keys.items]
    hashes = entry_hashes(entries, files)
    size = keys.shard_size
    if not entries:
        return [Shard(0, (), shard_key(step.name, plugin, step.params, []))]
    return [
        Shard(i // size, tuple(entries[i : i + size]), shard_key(step.name, plugin, step.params, hashes[i : i + size]))
        for i in range(0, len(entries), size)
    ]


__all__ = ["entry_hashes", "expand_inputs", "plan_shards", "value_hash"]
