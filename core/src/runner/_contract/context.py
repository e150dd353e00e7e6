"""Objects the engine hands to factories (:class:`BuildContext`) and to tasks, callbacks
and every run-time hook (:class:`RunContext`).

A :class:`RunContext` is the whole of what a plugin may read or ask of a live run: the
built objects, the loop position, the latest metrics, and a few *run services* (capture
and restore the run state, cut the metrics log back for a resume, ask the run to stop,
add metrics to the records). The engine implements the services behind the
:class:`RunServices` protocol; plugins only call the methods on the context.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from runner._contract.backend import Backend
    from runner._contract.recipe import Recipe
    from runner._contract.registration import PluginInfo


@attrs.define
class BuildContext:
    """Passed to any factory (or ``build`` method) that declares a ``ctx`` parameter.

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


class RunServices(Protocol):
    """What the engine behind a :class:`RunContext` provides (private implementation)."""

    def capture_state(self) -> dict[str, Any]: ...

    def restore_state(self, state: dict[str, Any]) -> None: ...

    def metrics_offset(self) -> int: ...

    def truncate_metrics(self, offset: int) -> None: ...

    def log_metrics(self, values: Mapping[str, float], stage: str) -> None: ...

    def plugin_of(self, owner: str) -> PluginInfo | None: ...


def resume_command(run_dir: Path | str) -> str:
    """``runner resume RUN_DIR``: the command that continues the run in ``run_dir`` from
    what that directory holds (shell-quoted)."""
    import shlex

    return f"runner resume {shlex.quote(str(run_dir))}"


#: The stages whose records :meth:`RunContext.log_metrics` can add to.
STAGES = ("train", "val", "test")


@attrs.define(eq=False)
class RunContext:
    """The live run, passed as ``run`` to every run-time hook, callback and checkpointer.

    Read the built objects, counters and metrics here; change the run only through the
    methods below (and ``should_stop``). ``extras`` is free space for third parties and is
    not used by runner or its bundled plugins.
    """

    recipe: Recipe
    run_dir: Path
    backend: Backend
    device: Any
    plugins: tuple[PluginInfo, ...] = ()
    """The plugins loaded in this process (distribution and version), e.g. for provenance."""
    model: Any = None
    """The model as the backend wrapped it (``.module`` of a DDP wrapper is the model)."""
    task: Any = None
    optimizers: list[Any] = attrs.Factory(list)
    schedulers: list[Any] = attrs.Factory(list)
    scaler: Any = None
    train_loader: Any = None
    val_loaders: dict[str, Any] = attrs.Factory(dict)
    test_loaders: dict[str, Any] = attrs.Factory(dict)
    datamodule: Any = None
    """The run's datamodule (the recipe's ``[data.*]`` tables, or a registered ``[datamodule]``)."""
    # -- the loop position (what a checkpoint must restore) -----------------------------
    epoch: int = 0
    global_step: int = 0
    """Optimizer steps taken so far."""
    batch_in_epoch: int = 0
    """Micro-batches of the current epoch already consumed (the resume position)."""
    samples_seen: int = 0
    epoch_done: bool = False
    """True between the end of an epoch's training (and its validation) and the next epoch."""
    last_val_step: int = -1
    """The ``global_step`` of the latest validation (-1: none yet)."""
    steps_per_epoch: int | None = None
    """Optimizer steps per epoch (None for a stream of unknown length)."""
    total_steps: int = 0
    """Optimizer steps the schedule plans in all (``max_steps`` or epochs x steps per epoch)."""
    # -- how the run was started -------------------------------------------------------
    resume: str | bool = False
    """What ``--resume`` asked for: False, True (latest in the run directory) or a path."""
    allow_recipe_change: bool = False
    """``--allow-recipe-change``: resume even when the recipe changed in ways that break exactness."""
    # -- stopping ------------------------------------------------------------------------
    should_stop: bool = False
    """Set (through :meth:`request_stop`) to end training after the current step."""
    stop_reason: str = ""
    interrupted: str = ""
    """The signal that interrupted the run (``"SIGINT"``, ``"SIGTERM"``), or ``""``. Set by the
    engine; an interrupted run skips its final validation and test and exits 130/143."""
    last_metrics: dict[str, dict[str, float]] = attrs.Factory(dict)
    """Latest reduced metrics by ``"<stage>/<key>"`` (e.g. ``"val/main"``) and ``"train"``."""
    data_wait: float = 0.0
    """Seconds this process's training loop has spent waiting for the train loader to hand
    it a batch (cumulative from the start of this process's training; not checkpointed).
    Compare two readings with the wall clock for the fraction of time spent on data."""
    outputs_limit: int = 0
    """Rows of step outputs collected per validation/test loader (see :meth:`collect_outputs`); 0: none."""
    added_summary: dict[str, Any] = attrs.Factory(dict)
    """What plugins added to ``summary.json`` with :meth:`add_summary`, by key."""
    extras: dict[str, Any] = attrs.Factory(dict)
    """Free space for third-party plugins; not checkpointed (use the get_state hook for that)."""
    services: RunServices | None = attrs.field(default=None, repr=False)
    """The engine's implementation of the run services (not for plugins to call directly)."""

    @property
    def is_primary(self) -> bool:
        """True on the process that writes records, progress and checkpoints (rank 0)."""
        return self.backend.is_primary

    @property
    def resume_command(self) -> str:
        """The command that continues this run from its run directory alone
        (``runner resume runs/NAME``): it reuses the run's recipe, overrides and local
        plugins, as saved there. Print it in interrupt and resume hints."""
        return resume_command(self.run_dir)

    def metric(self, name: str) -> float | None:
        """Look up ``"val/main/accuracy"``-style names in :attr:`last_metrics`."""
        group, _, key = name.rpartition("/")
        return self.last_metrics.get(group, {}).get(key)

    def position(self) -> tuple[int, int, int, bool, int]:
        """``(global_step, epoch, batch_in_epoch, epoch_done, last_val_step)``: two saves at
        the same position hold the same state."""
        return (self.global_step, self.epoch, self.batch_in_epoch, self.epoch_done, self.last_val_step)

    # -- run services ----------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """End training after the current step; ``reason`` goes into the summary line.

        The run still validates and tests as usual (early stopping, time limits); a run
        stopped by a signal is marked by the engine in :attr:`interrupted` instead.
        """
        self.should_stop = True
        if not self.stop_reason:
            self.stop_reason = reason

    def log_metrics(self, values: Mapping[str, float], *, stage: str = "train") -> None:
        """Add ``values`` to the next record of ``stage`` the engine writes.

        Call it from a callback: values added during a training step appear in the train
        record of the next logging step; values added in ``on_end_val_epoch`` /
        ``on_end_test_epoch`` appear in that loader's record (and in :attr:`last_metrics`).
        Values are not reduced across processes: reduce them first (``run.backend``) if
        they differ per rank. Records are written by the primary process only.
        """
        if stage not in STAGES:
            raise ValueError(f"log_metrics: stage must be one of {', '.join(STAGES)}, not {stage!r}")
        self._services().log_metrics(values, stage)

    def collect_outputs(self, max_samples: int = 100_000) -> None:
        """Ask for the step outputs of every validation and test epoch.

        The tensors of each step's ``StepOutput.outputs`` are kept (detached, on the CPU)
        and handed, concatenated along the first dimension, to ``on_end_val_epoch`` /
        ``on_end_test_epoch`` as ``outputs``. Memory stays bounded: at most ``max_samples``
        rows per loader and process are kept (the largest request wins); the rest of an
        epoch is dropped with one warning. Call it from ``setup`` or ``on_begin_train``.
        Each process collects its own share of the loader: gather it yourself when needed.
        """
        if max_samples < 1:
            raise ValueError(f"collect_outputs: max_samples must be at least 1, found {max_samples}")
        self.outputs_limit = max(self.outputs_limit, int(max_samples))

    def add_summary(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON data) under ``key`` in the ``extras`` section of the run's
        ``summary.json`` (a model's parameter count, a confusion matrix, why a callback
        stopped the run). The last value for a key wins; only the primary process writes."""
        import json

        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"add_summary({key!r}): the value must be JSON data: {exc}") from None
        self.added_summary[str(key)] = value

    def capture_state(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly where it is now: model,
        optimizers, schedulers, scaler, RNGs, loop position, loader position, pending
        losses, the metrics log's offset and every plugin's ``get_state`` (namespaced by
        owner). Tensors stay tensors; everything else is plain JSON data."""
        return self._services().capture_state()

    def restore_state(self, state: dict[str, Any]) -> None:
        """Load a state made by :meth:`capture_state` (cuts ``metrics.jsonl`` back to the
        state's offset on the primary process, then calls every ``update_state``)."""
        self._services().restore_state(state)

    def metrics_offset(self) -> int:
        """Bytes of ``metrics.jsonl`` written so far (0 outside the primary process)."""
        return self._services().metrics_offset()

    def truncate_metrics(self, offset: int) -> None:
        """Drop the records after byte ``offset`` of ``metrics.jsonl`` (they will be written again)."""
        self._services().truncate_metrics(offset)

    def plugin_of(self, owner: str) -> PluginInfo | None:
        """The plugin behind a state owner or run object (``"callback:ema#0"``,
        ``"backend:ddp"``, or a plugin's own name), or None when unknown."""
        return self._services().plugin_of(owner)

    def _services(self) -> RunServices:
        if self.services is None:
            raise RuntimeError("this RunContext is not attached to a running engine")
        return self.services
