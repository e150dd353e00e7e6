"""The backend interface: how a run is launched on one or more processes (and the job it runs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

if TYPE_CHECKING:
    import torch

    from runner._contract.recipe import Recipe
    from runner._contract.registration import PluginInfo

T = TypeVar("T")


class Job(Protocol):
    """A picklable description of one run that a backend hands to every worker process.

    Backends read ``recipe`` and ``run_dir``, may set ``restart`` (how many times the
    workers were restarted after a failure, e.g. torch elastic's
    ``TORCHELASTIC_RESTART_COUNT``; above 0 a run with a checkpointer continues from the
    newest checkpoint) and ``run_dir`` (to make it absolute), and pickle the job to start
    workers elsewhere.
    """

    recipe: Recipe
    run_dir: Path
    restart: int

    def plugin_infos(self) -> list[PluginInfo]:
        """The plugins this process loads for the job (to check every worker runs the same)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """Runs the training function in one or more processes and reduces across them.

    The backend object is also a run-scoped callback object: methods named like hooks
    (``setup``, ``get_state``, ``update_state``, ``on_*``) are called in runs that chose it.
    """

    rank: int
    world_size: int

    @property
    def is_primary(self) -> bool:
        """True on the process that writes logs, progress and checkpoints (rank 0)."""
        ...

    def launch(self, worker: Callable[[Any, Backend], T], job: Job) -> T:
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
