"""Interfaces of every component kind the engine calls, documented once.

Each protocol lists what the engine calls on an object of that kind; optional methods are
named in the docstring, not in the protocol. :func:`protocol_problems` checks a built
object against its kind's protocol and names what is missing: the engine runs it when it
builds a component (a missing method is a one-line error naming the plugin, not an
``AttributeError`` deep in the loop), and so do ``runner.testing.check_components`` and
``runner plugins doctor``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from runner._contract.backend import Backend

if TYPE_CHECKING:
    import numpy as np

    from runner._contract.context import RunContext
    from runner._contract.stage import Stage
    from runner._contract.task import StepInfo, StepOutput


@runtime_checkable
class Logger(Protocol):
    """Receives every metrics record on the primary process (``[[loggers]]``).

    ``close()``, optional, is called once when the run ends (write what is buffered). A
    logger is also a run object: its hook-named methods are called.
    """

    def log(self, record: dict[str, Any]) -> None: ...


@runtime_checkable
class Checkpointer(Protocol):
    """Saves run state and restores it on resume (``[checkpoint] name = ...``).

    The checkpointer is a run-scoped callback object: it saves from the hooks it defines
    (``on_end_train_step``, ``on_end_train_epoch``, ``on_interrupt``, ``on_end_train``),
    capturing the state with :meth:`RunContext.capture_state`.
    """

    def restore(self, run: RunContext, source: str | None) -> bool:
        """Load the latest valid checkpoint (or ``source``) into ``run``; False if none."""
        ...


@runtime_checkable
class Sampler(Protocol):
    """Yields dataset indices (or, for a batch sampler, lists of indices) for one epoch.

    Resumable samplers (required with ``[checkpoint]``) also define ``state_dict()`` and
    ``load_state_dict(state)``; ``set_epoch(epoch)`` reseeds per epoch; ``set_start(n)``
    lets the loader skip to the n-th item without fetching what it skips.
    """

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class Loader(Protocol):
    """What the loop iterates: a split's batches, resumable mid-epoch.

    ``close()`` is optional (called at teardown).
    """

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def skip(self, batches: int) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Transform(Protocol):
    """``transform(sample, rng) -> sample`` with a ``numpy.random.Generator`` keyed by
    (seed, epoch, sample index). A ``level`` attribute places it elsewhere in the pipeline:
    ``"batch"`` (called on each collated batch, same signature), ``"stream"`` (defines
    ``stream(items, rng) -> items`` instead of ``__call__``: a shuffle buffer) or
    ``"loader"`` (defines ``loader_options() -> dict`` of loader settings: prefetching).
    The default level is ``"sample"``.
    """

    def __call__(self, item: Any, rng: np.random.Generator) -> Any: ...


#: What a transform of each level defines instead of ``__call__``.
TRANSFORM_LEVEL_MEMBERS = {"stream": "stream", "loader": "loader_options"}


@runtime_checkable
class Collate(Protocol):
    """``collate(samples) -> batch``; see the batch convention in the data guide."""

    def __call__(self, samples: Sequence[Any]) -> Any: ...


@runtime_checkable
class TaskProtocol(Protocol):
    """The step logic of a run (subclass :class:`runner.Task` for defaults)."""

    def train_step(self, model: Any, batch: Any, step: StepInfo) -> StepOutput: ...

    def val_step(self, model: Any, batch: Any, step: StepInfo) -> StepOutput: ...

    def test_step(self, model: Any, batch: Any, step: StepInfo) -> StepOutput: ...

    def forward(self, stage: Stage, model: Any, batch: Any, step: StepInfo) -> StepOutput: ...


@runtime_checkable
class Processor(Protocol):
    """A ``[[process]]`` step's processor: ``process(inputs, ...)`` returns the shard's
    output mapping; ``analyze()`` is optional."""

    def process(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


@runtime_checkable
class Executor(Protocol):
    """Runs every shard of a ``[[process]]`` step and writes its output to the cache."""

    def run(self, processor: Any, shards: Sequence[Any], cache: Any, workers: int) -> Any: ...


@runtime_checkable
class Sweeper(Protocol):
    """Searches a ``[sweep]``: ``run(sweep)`` proposes trials and runs each with
    ``sweep.run_trial`` / ``sweep.run_points`` (a :class:`runner.Sweep`), which keep the
    trial ledger, so a restarted sweep skips the trials that finished."""

    def run(self, sweep: Any) -> None: ...


@runtime_checkable
class DataModuleProtocol(Protocol):
    """``prepare_data()`` once on the primary, ``setup(stage)`` and ``teardown()`` in every
    process, and the split loaders."""

    def prepare_data(self) -> None: ...

    def setup(self, stage: Stage) -> None: ...

    def teardown(self) -> None: ...

    def train_dataloader(self) -> Any: ...

    def val_dataloaders(self) -> dict[str, Any]: ...

    def test_dataloaders(self) -> dict[str, Any]: ...


#: The protocol each component kind's built object satisfies (kinds without one, such as
#: datasets, models, optimizers, schedulers and callbacks, are checked by torch or by use).
PROTOCOLS: dict[str, type] = {
    "backend": Backend,
    "logger": Logger,
    "checkpointer": Checkpointer,
    "sampler": Sampler,
    "loader": Loader,
    "transform": Transform,
    "collate": Collate,
    "task": TaskProtocol,
    "processor": Processor,
    "executor": Executor,
    "sweeper": Sweeper,
    "datamodule": DataModuleProtocol,
}

_DUNDER_OK = {"__iter__", "__len__", "__call__"}


def protocol_members(protocol: type) -> list[str]:
    """Names a protocol requires (methods and attributes), in declaration order."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (Protocol, object) or not getattr(klass, "_is_protocol", False):
            continue
        for name in list(getattr(klass, "__annotations__", {})) + list(vars(klass)):
            if name.startswith("_") and name not in _DUNDER_OK:
                continue
            if name not in names:
                names.append(name)
    return names


def protocol_problems(kind: str, obj: Any) -> list[str]:
    """What ``obj`` lacks to be a component of ``kind`` (empty when it conforms)."""
    protocol = PROTOCOLS.get(kind)
    if protocol is None or obj is None:
        return []
    missing = []
    members = protocol_members(protocol)
    if kind == "transform" and getattr(obj, "level", "sample") in TRANSFORM_LEVEL_MEMBERS:
        members = [TRANSFORM_LEVEL_MEMBERS[obj.level]]
    for name in members:
        if name in _DUNDER_OK:  # special methods count on the class only (not the metaclass)
            if not any(name in vars(klass) for klass in type(obj).__mro__ if klass is not object):
                missing.append(name)
        elif not hasattr(obj, name):
            missing.append(name)
    if kind == "sampler" and "__len__" in missing:
        missing.remove("__len__")  # an infinite sampler has no length; the loader copes
    if not missing:
        return []
    shown = ", ".join(f"{m}()" if not m.startswith("__") else m for m in missing)
    return [f"does not implement runner's {kind} interface: missing {shown}"]
