"""Where a checkpoint came from, and what changed since: recipe diff and plugin versions.

Changes are classified by key path. Those that change what is trained or how (data,
model, task, optimizer, scheduler, batch size, seed, accumulation, precision, device,
backend...) break exact resume; those that only change how long the run is, what it
reports or how it saves (epochs, max_steps, log_every, val_every, loggers, callbacks,
checkpoint, loader worker settings) do not. Unknown keys count as breaking.
"""

from __future__ import annotations

import json
import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from runner_checkpoint._version import __version__
from runner_checkpoint.fsutil import sha256_file

if TYPE_CHECKING:
    from runner import RunContext

#: Key paths (and everything under them) that may change without breaking exactness.
HARMLESS: tuple[str, ...] = (
    "run.name",
    "run.epochs",
    "run.max_steps",
    "run.log_every",
    "run.val_every",
    "run.max_val_batches",
    "run.test",
    "run.save_model",
    "checkpoint",
    "loggers",
    "callbacks",
    "progress",
    "plugins",
    "process",
)
#: Loader settings that change how batches are produced, never which ones.
_LOADER_RUNTIME = re.compile(
    r"^data\.(?:[^.]+\.)+loader\.(?:num_workers|persistent_workers|prefetch_factor|pin_memory|debug_mode)$"
)
_MISSING = "<unset>"


def is_breaking(path: str) -> bool:
    """Whether changing the recipe value at ``path`` breaks exact resume."""
    if _LOADER_RUNTIME.match(path):
        return False
    return not any(path == prefix or path.startswith(prefix + ".") for prefix in HARMLESS)


def jsonable(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists, odd scalars strings)."""
    return json.loads(json.dumps(data, default=str, allow_nan=False))


def collect(run: RunContext) -> dict[str, Any]:
    """Provenance of a run: resolved recipe, plugins (with file hashes for local ones), versions."""
    import numpy
    import torch

    from runner import __version__ as core_version

    plugins = []
    seen: set[tuple[str, str]] = set()
    for info in run.plugins:
        if (info.dist, info.version) in seen:
            continue
        seen.add((info.dist, info.version))
        item = {"name": info.name, "distribution": info.dist, "version": info.version}
        if info.version == "local" and info.dist.endswith(".py") and Path(info.dist).is_file():
            item["sha256"] = sha256_file(Path(info.dist))[1]
        plugins.append(item)
    return {
        "recipe": jsonable(run.recipe.resolved),
        "recipe_path": str(run.recipe.path),
        "plugins": plugins,
        "versions": {
            "runner-core": core_version,
            "runner-checkpoint": __version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "python": platform.python_version(),
        },
        "platform": platform.platform(),
        "device": str(run.device),
        "world_size": run.backend.world_size,
    }


@attrs.frozen
class Change:
    """One recipe value that differs between the checkpoint and the current recipe."""

    path: str
    old: Any
    new: Any
    breaking: bool

    def __str__(self) -> str:
        mark = "!" if self.breaking else " "
        note = "  (breaks exact resume)" if self.breaking else ""
        return f"{mark} {self.path}: {_show(self.old)} -> {_show(self.new)}{note}"


def _show(value: Any) -> str:
    text = _MISSING if value is _MISSING else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key paths of nested tables; arrays are compared whole."""
    if isinstance(tree, dict) and (tree or not prefix):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: tree}


def recipe_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """Every differing value between two resolved recipes, breaking ones first."""
    old, new = flatten(jsonable(saved)), flatten(jsonable(current))
    changes = [
        Change(path, old.get(path, _MISSING), new.get(path, _MISSING), is_breaking(path))
        for path in sorted(set(old) | set(new))
        if old.get(path, _MISSING) != new.get(path, _MISSING)
    ]
    return sorted(changes, key=lambda c: (not c.breaking, c.path))


def plugin_changes(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """Plugins added, removed, upgraded or (local files) edited since the checkpoint."""

    def index(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {str(r.get("distribution")): r for r in rows if isinstance(r, dict)}

    before, after = index(saved), index(current)
    lines = []
    for dist in sorted(set(before) | set(after)):
        was, now = before.get(dist), after.get(dist)
        if was is None and now is not None:
            lines.append(f"  plugin added: {dist} {now.get('version')}")
        elif now is None and was is not None:
            lines.append(f"  plugin removed: {dist} {was.get('version')}")
        elif was is not None and now is not None:
            if was.get("version") != now.get("version"):
                lines.append(f"  plugin {dist}: {was.get('version')} -> {now.get('version')}")
            elif was.get("sha256") != now.get("sha256"):
                lines.append(f"  plugin {dist}: file changed since the checkpoint")
    return lines


def version_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Library versions that differ (torch, numpy, python, runner-core...)."""
    return [
        f"  {name}: {saved.get(name)} -> {current.get(name)}"
        for name in sorted(set(saved) | set(current))
        if saved.get(name) != current.get(name)
    ]
