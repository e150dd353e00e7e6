"""The ``ddp`` backend, declared once (torch-free, read at validation).

The declaration is also the backend's configuration: ``build`` hands it, validated, to
:class:`runner_ddp.backend.DDP`, which reads it as ``params``. The keys that say how
workers are launched and joined live in :class:`LaunchParams`, so a backend built on
:class:`runner_ddp.backend.DDP` (runner-fsdp's ``fsdp``) declares them by subclassing it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import attrs

from runner import at_least, component, param

if TYPE_CHECKING:
    from runner_ddp.backend import DDP

#: ``nproc_per_node = "auto"`` on a machine without CUDA: two processes, enough to
#: exercise data parallelism; set a number for real CPU training.
CPU_AUTO_NPROC = 2


def _nproc(value: Any) -> str | None:
    if value == "auto" or (isinstance(value, int) and value >= 1):
        return None
    return f'must be a number of processes (at least 1) or "auto", found {value!r}'


def _nnodes(value: Any) -> str | None:
    if isinstance(value, int):
        return None if value >= 1 else f"must be at least 1, found {value}"
    match = re.fullmatch(r"(\d+):(\d+)", str(value))
    if match and 1 <= int(match[1]) <= int(match[2]):
        return None
    return f'must be a number of nodes or an elastic range "MIN:MAX" (1 <= MIN <= MAX), found {value!r}'


def _endpoint(value: Any) -> str | None:
    if value == "" or re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[\w.-]+)(:\d{1,5})?", str(value)):
        return None
    return f'must be "HOST:PORT" (or empty for a single node), found {value!r}'


def node_range(nnodes: int | str) -> tuple[int, int]:
    """``(min_nodes, max_nodes)`` of an ``nnodes`` value (``2`` or ``"1:4"``)."""
    if isinstance(nnodes, int):
        return nnodes, nnodes
    low, _, high = str(nnodes).partition(":")
    return int(low), int(high or low)


@attrs.define
class LaunchParams:
    """How the workers of a torch.distributed backend are launched, joined and watched.

    Public for backends built on :class:`runner_ddp.backend.DDP`: a ``@runner.component``
    subclass adds its own keys and a ``build`` returning a ``DDP`` subclass; the launcher
    rebuilds the backend in every worker through that ``build``.
    """

    nproc_per_node: int | Literal["auto"] = param(
        "auto",
        doc=f'Worker processes on this node; "auto": one per visible GPU, or {CPU_AUTO_NPROC} without CUDA.',
        check=_nproc,
    )
    nnodes: int | str = param(1, doc='Nodes taking part: a number, or an elastic range "MIN:MAX".', check=_nnodes)
    node_rank: int = param(
        0,
        doc="This node's rank, 0 to nnodes - 1 (the static rendezvous needs it; node 0 prepares data).",
        check=at_least(0),
    )
    rdzv_endpoint: str = param(
        "",
        doc='"HOST:PORT" where the nodes meet (a port on node 0), the same on every node; '
        "empty: this machine on a free port (single node).",
        check=_endpoint,
    )
    rdzv_backend: Literal["c10d", "static"] = param(
        "c10d", doc='Rendezvous: "c10d" (elastic, the TCP store on rdzv_endpoint) or "static" (fixed node ranks).'
    )
    rdzv_id: str = param("", doc='Job id shared by every node of one run; empty: "runner-<run name>".')
    max_restarts: int = param(
        0,
        doc="Restart every worker this many times after a failure; with a [checkpoint] table they resume "
        "from the newest checkpoint.",
        check=at_least(0),
    )
    timeout_s: float = param(
        600.0,
        doc="Seconds a rank waits for the others (rendezvous, collectives) before failing the job.",
        check=at_least(1),
    )
    process_group: Literal["auto", "gloo", "nccl"] = param(
        "auto", doc='torch.distributed backend; "auto": NCCL when training on CUDA, gloo on CPU.'
    )
    mode: Literal["auto", "launch", "join"] = param(
        "auto",
        doc='"auto": join the processes of a launcher that set RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/'
        'SLURM_NTASKS (srun, more than one task), else launch; "launch" or "join" to force either.',
    )
    start_method: Literal["auto", "spawn", "fork", "forkserver"] = param(
        "auto", doc='How launched workers start; "auto": fork for CPU training on Linux, spawn otherwise.'
    )


@component
class DDPParams(LaunchParams):
    """DistributedDataParallel over torch.distributed (gloo, NCCL), started by torch's elastic agent.

    ``runner run`` starts ``nproc_per_node`` worker processes itself; under ``torchrun``,
    SLURM (``srun``) or any launcher that sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` it
    joins that launcher's processes instead.
    """

    find_unused_parameters: bool = param(
        False, doc="Let DistributedDataParallel handle parameters that get no gradient in a step (slower)."
    )
    bucket_cap_mb: float = param(25.0, doc="Gradient bucket size (MiB) of the all-reduce.", check=at_least(1))

    def build(self) -> DDP:
        from runner_ddp.backend import DDP

        return DDP(self)
