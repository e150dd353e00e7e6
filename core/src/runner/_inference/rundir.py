"""Open a run directory's trained model description: ``model.json``, the plugins it was
trained with, and the run's resolved recipe (torch-free).

The run's ``recipe.toml`` is validated again with the plugins ``model.json`` lists (local
plugin files by their absolute paths), plus any the caller adds, and with ``-o``
overrides (``-o run.device=cpu``, ``-o run.backend=ddp``), without the tables only
training uses (optimizer, scheduler, callbacks, loggers, checkpoint): a machine that
predicts needs the plugins of the model, task and data, not an experiment logger's. Plugin versions or local plugin
files that changed since training are reported, not refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from runner._contract.errors import RunnerError
from runner._contract.recipe import Recipe
from runner._engine.modelfiles import read_model_json
from runner._engine.provenance import plugin_changes, plugin_rows
from runner._engine.rundir import RECIPE_FILE
from runner._plugins.manager import PluginManager

#: Recipe tables that only training uses; dropped when a run is reopened for inference.
TRAINING_ONLY = ("optimizer", "scheduler", "callbacks", "loggers", "checkpoint")


@attrs.define(eq=False)
class TrainedRun:
    """A run directory with a trained model, its recipe and a plugin manager to rebuild it."""

    run_dir: Path
    info: dict[str, Any]
    """``model.json``."""
    recipe: Recipe
    plugins: PluginManager
    notes: list[str]
    """What changed since training (plugin versions, edited local plugin files)."""

    @property
    def meta(self) -> dict[str, Any]:
        """The training data's ``meta`` the model was built with."""
        meta = self.info.get("meta")
        return dict(meta) if isinstance(meta, dict) else {}

    @property
    def local_plugins(self) -> tuple[str, ...]:
        return self.plugins.local_plugins


def add_objects(manager: PluginManager, objects: Iterable[Any]) -> None:
    """Register plugin objects (modules or instances with hook implementations) given in
    Python; ``model.json`` names them ``<object NAME>`` (they cannot be loaded again from it)."""
    from runner._contract.registration import PluginInfo
    from runner._engine.provenance import OBJECT_VERSION

    taken: set[str] = set()
    for plugin in objects:
        name = getattr(plugin, "__name__", type(plugin).__name__)
        dist, count = f"<object {name}>", 1
        while dist in taken:
            count += 1
            dist = f"<object {name}#{count}>"
        taken.add(dist)
        manager.add(plugin, PluginInfo(name=dist, dist=dist, version=OBJECT_VERSION))


def reload_specs(info: dict[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """The local plugin specs to load: those ``model.json`` lists (a file that no longer
    exists is an error, unless ``extra`` brings a file of the same name), then ``extra``."""
    extra = [str(spec) for spec in extra]
    given = {Path(spec).name for spec in extra if spec.endswith(".py")}
    specs = []
    for spec in info.get("local_plugins", []):
        if not isinstance(spec, str):
            continue
        if spec.endswith(".py") and not Path(spec).is_file():
            if Path(spec).name in given:
                continue
            raise RunnerError(
                f"the model was trained with the local plugin {spec}, which no longer exists; "
                f"pass its new location with -p PATH (or plugins=[...])"
            )
        specs.append(spec)
    return list(dict.fromkeys([*specs, *extra]))


def open_run(
    run_dir: str | Path,
    *,
    overrides: Iterable[str] = (),
    plugins: Iterable[str] = (),
    objects: Iterable[Any] = (),
) -> TrainedRun:
    """Read ``run_dir``'s ``model.json`` and recipe, load the plugins, validate the recipe.

    ``plugins`` are extra ``-p`` specs; ``objects`` extra plugin objects (modules or
    instances with hook implementations, for the Python API).
    """
    from runner._recipe.source import read_recipe
    from runner._recipe.validate import validate

    run_dir = Path(run_dir)
    info = read_model_json(run_dir)
    specs = reload_specs(info, plugins)
    manager = PluginManager(local_plugins=specs).load()
    add_objects(manager, objects)
    recipe_file = run_dir / RECIPE_FILE
    if not recipe_file.is_file():
        raise RunnerError(f"{run_dir} has a model.json but no {RECIPE_FILE}: not a complete run directory")
    source = read_recipe(recipe_file, overrides, collect=True)
    # The recipe's own plugins = [...] are relative to where it was first read: use the
    # specs model.json recorded (absolute paths) instead.
    source.data.pop("plugins", None)
    for key in TRAINING_ONLY:  # never built to predict: their plugins need not be installed here
        source.data.pop(key, None)
    recipe = validate(source, manager.registry, manager.failures)
    # Changes matter for the plugins that build what inference uses (and local plugin files).
    used = {manager.registry.get(c.kind, c.name).plugin.dist for c in recipe.components()}
    saved = [row for row in info.get("plugins") or [] if isinstance(row, dict)]
    relevant = [row for row in saved if row.get("distribution") in used or row.get("path")]
    notes = plugin_changes(relevant, plugin_rows(manager.plugins()))
    return TrainedRun(run_dir, info, recipe, manager, notes)
