"""Every hook a runner plugin can implement, in one place.

Plugins mark implementations with :data:`runner.hookimpl` and need only accept the
arguments they use (pluggy passes arguments by name). Hooks fall in five sections:

1. *Registration* hooks receive a ``register`` callback and declare components that
   recipes then name. They run once, when plugins load, and must not import torch.
2. *Data lifecycle* hooks (helios ``DataModule``, PyMarlin ``DataProcessor``).
3. *Training contract* hooks (PyMarlin ``ModuleInterface``): optimizers, and the
   callbacks the engine fires around steps and epochs.
4. *State* hooks, so any plugin's state travels in checkpoints.
5. *Trained models*: weights a run leaves besides its final ones, and weights that
   ``runner predict``/``export`` and :func:`runner.load` read from a plugin's files.

Sections 2-4 and ``get_model_weights`` are *run hooks*. Besides plugin modules (whose implementations, marked with
``@hookimpl``, apply to every run in a process that loaded the plugin), the objects a
recipe chooses receive them by defining methods of the same name, without markers, and
only in runs that chose them: the backend, the task, the model, the checkpointer, the
loggers and the ``[[callbacks]]`` (PyMarlin's module interface is the callback object).
Behaviour that belongs to a component goes on the component object.

Unless a hook says "firstresult", every implementation is called and results are
collected in a list (pluggy's default order: last registered first; the recipe's
objects are called in recipe order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

from runner._contract.registration import RegisterCommand, RegisterComponent

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from runner._contract.context import RunContext
    from runner._contract.recipe import Recipe
    from runner._contract.stage import Stage

PROJECT = "runner"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ---------------------------------------------------------------------------
# 1. Registration (called once per plugin manager, when plugins load)
# ---------------------------------------------------------------------------


@hookspec
def register_datasets(register: RegisterComponent) -> None:
    """Register dataset sources and combinators by name.

    Called once when plugins load. ``register(name, factory, params=..., doc=...)``;
    the factory is called with the recipe's parameters (including ``split``) and
    returns a map-style or iterable ``torch.utils.data.Dataset``.
    """


@hookspec
def register_collates(register: RegisterComponent) -> None:
    """Register collate functions (helios ``COLLATE_FN_REGISTRY``).

    The factory receives the recipe parameters and returns ``collate(samples) -> batch``.
    """


@hookspec
def register_samplers(register: RegisterComponent) -> None:
    """Register samplers. The factory receives ``dataset=``, ``seed=`` and the recipe
    parameters and returns a sampler; resumable ones implement
    ``state_dict()``/``load_state_dict()``.
    """


@hookspec
def register_transforms(register: RegisterComponent) -> None:
    """Register per-sample transforms (dataflow ``map``).

    The factory returns ``transform(sample, rng) -> sample``; ``rng`` is a
    ``numpy.random.Generator`` keyed by (seed, epoch, sample index).
    """


@hookspec
def register_processors(register: RegisterComponent) -> None:
    """Register data processors (PyMarlin ``DataProcessor``) run by ``[[process]]`` steps.

    The factory returns an object with ``process(...)`` and optionally ``analyze(...)``.
    """


@hookspec
def register_datamodules(register: RegisterComponent) -> None:
    """Register datamodules (helios ``DataModule``): objects with ``prepare_data()``,
    ``setup(stage)``, ``teardown()`` and ``train/val/test_dataloader(s)``.
    """


@hookspec
def register_models(register: RegisterComponent) -> None:
    """Register models. The factory receives ``ctx=`` (a :class:`runner.BuildContext`,
    whose ``train_dataset`` can supply input and output sizes) if it declares it, plus
    the recipe parameters, and returns a ``torch.nn.Module``.
    """


@hookspec
def register_tasks(register: RegisterComponent) -> None:
    """Register tasks: the train/val/test step logic (PyMarlin ``train_step``/``val_step``/
    ``test_step``/``forward(stage, ...)``). The factory returns a :class:`runner.Task`.
    """


@hookspec
def register_optimizers(register: RegisterComponent) -> None:
    """Register optimizers. The factory receives ``model=`` and the recipe parameters."""


@hookspec
def register_schedulers(register: RegisterComponent) -> None:
    """Register learning-rate schedulers. The factory receives ``optimizer=``,
    ``total_steps=`` and ``steps_per_epoch=`` and the recipe parameters. Schedulers step
    once per optimizer step.
    """


@hookspec
def register_callbacks(register: RegisterComponent) -> None:
    """Register callbacks that recipes list in ``[[callbacks]]``. The factory returns an
    object whose methods named like the callback hooks below are called during the run.
    """


@hookspec
def register_backends(register: RegisterComponent) -> None:
    """Register execution backends (``[run] backend = NAME``): single device, DDP, ...

    The factory returns a :class:`runner.Backend`.
    """


@hookspec
def register_checkpointers(register: RegisterComponent) -> None:
    """Register checkpointers (``[checkpoint] name = NAME``). The factory receives
    ``run_dir=`` and the recipe parameters and returns a :class:`runner.Checkpointer`.
    """


@hookspec
def register_loggers(register: RegisterComponent) -> None:
    """Register experiment loggers (``[[loggers]]``). The factory receives ``run_dir=``
    and the recipe parameters and returns a :class:`runner.Logger`.
    """


@hookspec
def register_loaders(register: RegisterComponent) -> None:
    """Register loader components that a split's loader table names
    (``loader = { name = "async", ... }``). Their parameters extend the standard loader
    keys. The factory receives the recipe parameters plus ``split=`` (the
    :class:`~runner._contract.recipe.SplitConfig`), ``registry=``, ``ctx=``, ``train=``,
    ``on_cuda=``, ``collate=`` (the built collate function or None), ``sampler_factory=``
    (or None) and ``loader_config=`` (the standard keys), and returns a loader with
    ``__iter__``, ``__len__``, ``set_epoch``, ``skip``, ``state_dict`` and
    ``load_state_dict`` (optionally ``close()``, called at teardown). The split's dataset
    is not built in the training process: the loader builds it (from ``split.dataset``)
    where it wants; its ``dataset`` attribute, if any, is what models see as
    ``ctx.train_dataset``.
    """


@hookspec
def register_executors(register: RegisterComponent) -> None:
    """Register executors for ``[[process]]`` steps (``executor = "NAME"`` or
    ``executor = { name = "NAME", ... }``). The factory receives the executor's recipe
    parameters and returns an object with ``run(processor, shards, cache, workers)`` that
    processes every :class:`~runner._processing.shards.Shard` (see
    :func:`~runner._processing.shards.process_shard`) and writes its output with
    ``cache.write_shard(shard.key, data)``; ``workers`` is the step's ``process_count``.
    Processor exceptions should propagate unchanged: any non-``RunnerError`` leaving
    ``run()`` is reported as the processor's (naming its plugin); raise ``RunnerError``
    for the executor's own failures. Executors that run shards elsewhere pickle the
    processor. Shard keys do not depend on the executor, so a cached output is reused
    whichever executor made it. Built in: ``process``, ``thread``, ``inline``.
    """


@hookspec
def register_functions(register: RegisterComponent) -> None:
    """Register plain functions by name, for component parameters that name one: the
    ``producer`` of runner-datasets' ``list`` and ``generator`` datasets, the ``fn`` of its
    ``map`` transform. ``register(name, function)`` (or a lazy ``"module:attribute"``).

    This is how a recipe reaches user code: recipes name registered components and
    functions, never import paths. A project's own functions go in a local plugin file
    listed in the recipe's ``plugins = [...]`` (or given with ``-p``). Components look
    them up with :meth:`runner.Registry.function` and declare such parameters with
    ``param(registered="function")``, so unknown names are recipe errors.
    """


@hookspec
def register_sweepers(register: RegisterComponent) -> None:
    """Register sweepers that ``runner sweep`` runs (``[sweep] name = "NAME"``). The
    component's ``build`` returns an object with ``run(sweep)``, where ``sweep`` is a
    :class:`runner.Sweep`: its axes, trial budget, parallelism, metric and direction, and
    ``run_trial(params, report=...)`` / ``run_points(points)``, which run each trial as a
    normal ``runner run`` in the sweep directory, record it in the trial ledger and return
    it (a trial the ledger holds is returned without running again). ``report(step,
    value)`` receives the trial's validation metric as it is logged and returns False to
    stop (prune) the trial. Built in: ``grid``, ``random``.
    """


@hookspec
def register_commands(register: RegisterCommand) -> None:
    """Register CLI subcommands: ``register(name, command, help=...)`` where ``command``
    is a ``click.Command`` or a lazy ``"module:attribute"`` reference to one.
    """


# ---------------------------------------------------------------------------
# 2. Data lifecycle (helios DataModule, PyMarlin DataInterface)
# ---------------------------------------------------------------------------


@hookspec
def prepare_data(recipe: Recipe) -> None:
    """Download or prepare data once, on the primary process, before any worker or
    rank starts. Store no state here: other processes will not see it.
    """


@hookspec
def setup(run: RunContext, stage: Stage) -> None:
    """Called in every process after the model and datasets for ``stage`` are built and
    before its first batch.
    """


@hookspec
def teardown(run: RunContext) -> None:
    """Called in every process once the run has ended, successfully or not."""


# ---------------------------------------------------------------------------
# 3. Training contract (PyMarlin ModuleInterface / CallbackInterface)
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def get_optimizers_schedulers(
    run: RunContext, model: Any, estimated_global_steps_per_epoch: int, epochs: int
) -> tuple[list[Any], list[Any]] | None:
    """Return ``(optimizers, schedulers)`` for ``model`` (PyMarlin's module interface).

    Asked only when the recipe has no ``[optimizer]`` table: a recipe's optimizer always
    wins, so an installed plugin cannot replace it. The task and the model answer first
    when they define a method of this name. Stops at the first non-None result; when
    nobody answers the run stops with an error asking for an ``[optimizer]`` table.
    """


@hookspec
def on_begin_train(run: RunContext) -> None:
    """Called once, before the first training epoch (also after a resume)."""


@hookspec
def on_begin_train_epoch(run: RunContext, epoch: int, global_step: int) -> None:
    """Called at the start of every training epoch, before its first forward."""


@hookspec
def on_end_backward(run: RunContext, global_step: int, loss: Any) -> None:
    """Called after each backward pass with the undetached (scaled for accumulation) loss."""


@hookspec
def on_end_train_step(run: RunContext, global_step: int, outputs: Any) -> None:
    """Called after each optimizer step; ``outputs`` is the task's ``StepOutput``.
    ``global_step`` counts optimizer steps, starting at 1.
    """


@hookspec
def on_end_train_epoch(run: RunContext, epoch: int, global_step: int) -> None:
    """Called when a training epoch ends, after its epoch-end validation (if any)."""


@hookspec
def on_begin_val_epoch(run: RunContext, global_step: int, key: str) -> None:
    """Called before validating on the loader named ``key`` (the model is not in eval mode yet)."""


@hookspec
def on_end_val_epoch(
    run: RunContext, global_step: int, key: str, metrics: dict[str, float], outputs: tuple[Any, ...] | None
) -> None:
    """Called after validating on the loader named ``key`` with its reduced metrics, before
    its record is written. ``outputs``: the epoch's step outputs (``StepOutput.outputs``,
    each concatenated over the epoch, this process's share) when some plugin asked for
    them with ``run.collect_outputs()``, else None.
    """


@hookspec
def on_begin_test_epoch(run: RunContext, global_step: int, key: str) -> None:
    """Called before testing on the loader named ``key``."""


@hookspec
def on_end_test_epoch(
    run: RunContext, global_step: int, key: str, metrics: dict[str, float], outputs: tuple[Any, ...] | None
) -> None:
    """Called after testing on the loader named ``key`` with its reduced metrics (and the
    collected ``outputs``, as for validation)."""


@hookspec
def on_log(run: RunContext, record: dict[str, Any]) -> None:
    """Called with every metrics record just before loggers write it."""


@hookspec
def on_interrupt(run: RunContext, signal: str) -> None:
    """Called once when SIGINT or SIGTERM (``signal`` is its name) reached the training
    process, at the end of the step during which it arrived; with several processes every
    rank calls it at the same step. The core owns the signal handlers (plugins install
    none): checkpointers save here. The run then stops without its final validation and
    test (``run.interrupted`` is set) and exits 130 (SIGINT) or 143 (SIGTERM). A second
    signal stops the process at once.
    """


@hookspec
def on_end_train(run: RunContext, global_step: int) -> None:
    """Called once when training finishes, after the last validation and before test
    (also when it was interrupted: check ``run.interrupted``)."""


# ---------------------------------------------------------------------------
# 4. State for checkpoints
# ---------------------------------------------------------------------------


@hookspec
def get_state(run: RunContext) -> dict[str, Any] | None:
    """Return a dict to store in checkpoints (JSON-serialisable values or tensors), or None.

    Each implementation's result is stored under its owner (the plugin's name, or the
    run object's: ``callback:ema#0``, ``backend:ddp``), so keys never collide between
    plugins. Called on every process; the checkpointer stores the primary's.
    """


@hookspec
def update_state(run: RunContext, state: dict[str, Any]) -> None:
    """Restore from a checkpoint: ``state`` is exactly what this implementation's owner
    returned from :func:`get_state` (not called when the checkpoint holds nothing of it).
    """


# ---------------------------------------------------------------------------
# 5. Trained models (runner predict, runner export, runner.load)
# ---------------------------------------------------------------------------


@hookspec
def get_model_weights(run: RunContext) -> Mapping[str, Mapping[str, Any]] | None:
    """Offer alternative weights of the model, to be saved next to its final ones.

    Return ``{name: state_dict}`` (or None): each state dict has the keys of the model's
    own ``state_dict()`` (the unwrapped model's) and is written as
    ``model.<name>.safetensors`` in the run directory when training ends, with
    ``[run] save_model`` (the default), by the primary process; ``model.json`` lists it.
    An exponential moving average returns ``{"ema": averaged_weights}``; users then
    predict with ``--checkpoint ema`` or ``runner.load(run_dir, checkpoint="ema")``.
    Names are letters, digits, ``-`` and ``_``; ``final``, ``best`` and ``last`` are
    taken. Called once, after ``on_end_train``, on every process (so an implementation
    may gather across ranks); a run object (callback, task, model) defines it as a method.
    """


@hookspec(firstresult=True)
def load_model_weights(run_dir: Path, which: str) -> Mapping[str, Any] | None:
    """The model weights (a state dict) that ``which`` names for the run in ``run_dir``,
    read from files this plugin wrote (e.g. checkpoints), or None when ``which`` is not
    one of yours.

    Asked by ``runner predict --checkpoint WHICH``, ``runner export --checkpoint WHICH``
    and ``runner.load(run_dir, checkpoint=WHICH)`` for anything but the run's own weights
    files: ``"best"``, ``"last"`` or a path (runner-checkpoint answers for its
    checkpoints). Stops at the first non-None result. Must not unpickle anything; raise
    a :class:`runner.RunnerError` saying what is wrong when ``which`` is yours but
    unusable (a damaged checkpoint, no ``monitor`` for ``best``).
    """
