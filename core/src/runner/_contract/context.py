"""Objects the engine hands to factories, tasks and callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from runner._contract.protocols import Backend
    from runner._contract.recipe import Recipe
    from runner._plugins.manager import PluginManager


@attrs.define
class BuildContext:
    """Passed to any factory that declares a ``ctx`` parameter.

    ``train_dataset`` lets a model read sizes from the data: datasets may expose a
    ``meta`` dict (``in_features``, ``num_classes``, ``in_channels``, ...).
    """

    recipe: Recipe
    seed: int
    run_dir: Path
    device: Any = "cpu"
    rank: int = 0
    world_size: int = 1
    train_dataset: Any = None

    @property
    def meta(self) -> dict[str, Any]:
        """``train_dataset.meta`` or ``{}``."""
        return dict(getattr(self.train_dataset, "meta", None) or {})


@attrs.define(eq=False)
class RunContext:
    """The live run, passed to every callback hook as ``run``.

    Callbacks read counters and metrics here and may set ``should_stop`` to end training
    after the current step (with ``stop_reason`` for the summary line).
    """

    recipe: Recipe
    run_dir: Path
    plugins: PluginManager
    backend: Backend
    device: Any
    model: Any = None
    task: Any = None
    optimizers: list[Any] = attrs.Factory(list)
    schedulers: list[Any] = attrs.Factory(list)
    scaler: Any = None
    train_loader: Any = None
    val_loaders: dict[str, Any] = attrs.Factory(dict)
    test_loaders: dict[str, Any] = attrs.Factory(dict)
    epoch: int = 0
    global_step: int = 0
    batch_in_epoch: int = 0
    """Micro-batches of the current epoch already consumed (the resume position)."""
    samples_seen: int = 0
    resume: str | bool = False
    """What ``--resume`` asked for: False, True (latest in the run directory) or a path."""
    allow_recipe_change: bool = False
    """``--allow-recipe-change``: resume even when the recipe changed in ways that break exactness."""
    should_stop: bool = False
    stop_reason: str = ""
    last_metrics: dict[str, dict[str, float]] = attrs.Factory(dict)
    """Latest reduced metrics by ``"<stage>/<key>"`` (e.g. ``"val/main"``) and ``"train"``."""
    extras: dict[str, Any] = attrs.Factory(dict)
    """Free space for plugins; not checkpointed (use the get_state hook for that)."""

    @property
    def is_primary(self) -> bool:
        return self.backend.is_primary

    def metric(self, name: str) -> float | None:
        """Look up ``"val/main/accuracy"``-style names in :attr:`last_metrics`."""
        group, _, key = name.rpartition("/")
        return self.last_metrics.get(group, {}).get(key)
