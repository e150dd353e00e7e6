"""Interfaces of the components the engine drives: backends, loggers, checkpointers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import torch

    from runner._contract.context import RunContext
    from runner._engine.job import Job

T = TypeVar("T")


@runtime_checkable
class Backend(Protocol):
    """Runs the training function in one or more processes and reduces across them."""

    rank: int
    world_size: int

    @property
    def is_primary(self) -> bool:
        """True on the process that writes logs, progress and checkpoints (rank 0)."""
        ...

    def launch(self, worker: Callable[[Job, Backend], T], job: Job) -> T:
        """Run ``worker(job, backend)`` in every worker process, each with the backend as
        seen from that rank; return the primary's result. ``worker`` and ``job`` pickle, so
        backends may start new processes.
        """
        ...

    def device(self, requested: str) -> torch.device:
        """The device this process trains on, given ``[run] device``."""
        ...

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Wrap the model for this backend (e.g. DistributedDataParallel)."""
        ...

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all processes (identity on one process)."""
        ...

    def barrier(self) -> None:
        """Wait for every process."""
        ...


@runtime_checkable
class Logger(Protocol):
    """Receives every metrics record on the primary process."""

    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Checkpointer(Protocol):
    """Saves run state (it also receives the callback hooks) and restores it on resume."""

    def restore(self, run: RunContext, source: str | None) -> bool:
        """Load the latest valid checkpoint (or ``source``) into ``run``; False if none."""
        ...
