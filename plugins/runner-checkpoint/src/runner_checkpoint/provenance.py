"""Where a checkpoint came from, and what changed since: recipe diff and plugin versions.

Changes are classified by key path. Those that change what is trained or how (data,
model, task, optimizer, scheduler, batch size, seed, accumulation, precision, device,
backend...) break exact resume; those that only change what the run reports or how it
saves (log_every, val_every, loggers, callbacks, checkpoint, loader worker settings) do
not. Unknown keys count as breaking.

The length of the run (``run.epochs``, ``run.max_steps``: the *schedule keys*) is
harmless without a learning-rate scheduler. With one, the scheduler was built for the
run's total steps and steps per epoch, so a change of either splices two schedules into
one run: it breaks exact resume. The checkpoint records both numbers (``schedule``), so
a change that leaves them alone (epochs while ``max_steps`` decides) stays harmless, and
one that changes them without a recipe change (more data) is still caught.
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
#: How long the run is: what a learning-rate scheduler's total steps come from.
SCHEDULE_KEYS: tuple[str, ...] = ("run.epochs", "run.max_steps")
#: The numbers a scheduler is built with (the engine passes both to scheduler factories).
SCHEDULE_NUMBERS: tuple[str, ...] = ("total_steps", "steps_per_epoch")
_MISSING = "<unset>"
SCHEDULE_REASON = "changes the learning-rate schedule"


def is_breaking(path: str, schedule_breaks: bool = True) -> bool:
    """Whether changing the recipe value at ``path`` breaks exact resume; the schedule keys
    do when ``schedule_breaks`` (the run has a scheduler whose schedule changes)."""
    if path in SCHEDULE_KEYS:
        return schedule_breaks
    if _LOADER_RUNTIME.match(path):
        return False
    return not any(path == prefix or path.startswith(prefix + ".") for prefix in HARMLESS)


def schedule_of(run: RunContext) -> dict[str, Any]:
    """The numbers the run's schedulers were built with, and how many schedulers it has."""
    return {
        "total_steps": run.total_steps,
        "steps_per_epoch": run.steps_per_epoch,
        "schedulers": len(run.schedulers),
    }


def schedule_changes(saved: Any, current: dict[str, Any]) -> list[Change] | None:
    """The schedule numbers that differ (breaking when the run has a scheduler), or None
    when the checkpoint did not record them (written by an older runner-checkpoint)."""
    if not isinstance(saved, dict):
        return None
    scheduled = bool(current.get("schedulers"))
    return [
        Change(f"schedule.{name}", saved.get(name), current.get(name), scheduled, SCHEDULE_REASON if scheduled else "")
        for name in SCHEDULE_NUMBERS
        if saved.get(name) != current.get(name)
    ]


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
        "schedule": schedule_of(run),
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
    reason: str = ""
    """Why it breaks exact resume, when that needs saying (the schedule)."""

    def __str__(self) -> str:
        mark = "!" if self.breaking else " "
        note = f"  (breaks exact resume{': ' + self.reason if self.reason else ''})" if self.breaking else ""
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


def recipe_changes(saved: dict[str, Any], current: dict[str, Any], schedule_breaks: bool = False) -> list[Change]:
    """Every differing value between two resolved recipes, breaking ones first; the schedule
    keys break exactness when ``schedule_breaks``."""
    old, new = flatten(jsonable(saved)), flatten(jsonable(current))
    changes = []
    for path in sorted(set(old) | set(new)):
        if old.get(path, _MISSING) == new.get(path, _MISSING):
            continue
        breaking = is_breaking(path, schedule_breaks)
        reason = SCHEDULE_REASON if breaking and path in SCHEDULE_KEYS else ""
        changes.append(Change(path, old.get(path, _MISSING), new.get(path, _MISSING), breaking, reason))
    return sorted(changes, key=lambda c: (not c.breaking, c.path))


def run_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """What differs between a checkpoint's provenance and the current one (both made by
    :func:`collect`): recipe values and the schedule numbers (see the module doc),
    breaking ones first."""
    now = current.get("schedule") or {}
    schedule = schedule_changes(saved.get("schedule"), now)
    # An older checkpoint (no schedule recorded): any change of the run's length may break it.
    breaks = bool(now.get("schedulers")) if schedule is None else any(change.breaking for change in schedule)
    changes = recipe_changes(saved.get("recipe", {}), current["recipe"], schedule_breaks=breaks) + (schedule or [])
    return sorted(changes, key=lambda c: (not c.breaking, c.path))


def plugin_changes(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """Plugins added, removed, upgraded or (local files) edited since the checkpoint."""

    def key(row: dict[str, Any]) -> str:
        # A local plugin file is the same plugin wherever it lies (a run continued from its
        # run directory loads the copy there): known by its name, compared by content.
        if row.get("version") == "local" and str(row.get("distribution", "")).endswith(".py"):
            return f"{row.get('name')}.py (local)"
        return str(row.get("distribution"))

    def index(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {key(r): r for r in rows if isinstance(r, dict)}

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
