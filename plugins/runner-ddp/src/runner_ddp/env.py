"""Where this process stands in a job started by some launcher (torch-free).

torchrun and torch's elastic agent (and most launchers) set ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; ``srun`` sets
``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID``, and the master address is then
derived from the step's node list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from runner import RunnerError

DEFAULT_PORT = 29500


@attrs.frozen
class RankEnv:
    """One process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int
    restart_count: int = 0
    source: str = "env"
    """``"env"`` (torchrun, the elastic agent or another launcher) or ``"slurm"``."""

    def exports(self) -> dict[str, str]:
        """The standard variables, for ``init_process_group(init_method="env://")``."""
        return {
            "RANK": str(self.rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_RANK": str(self.local_rank),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }


def _int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = environ.get(name)
    if value is None or value == "":
        if default is None:
            raise RunnerError(f"environment variable {name} is not set")
        return default
    try:
        return int(value)
    except ValueError:
        raise RunnerError(f"environment variable {name} must be an integer, found {value!r}") from None


def has_launcher(environ: Mapping[str, str]) -> bool:
    """Whether a launcher started this process as one rank of a job."""
    if "RANK" in environ and "WORLD_SIZE" in environ:
        return True
    return _slurm_tasks(environ) > 1


def _slurm_tasks(environ: Mapping[str, str]) -> int:
    if "SLURM_PROCID" not in environ:
        return 0
    value = environ.get("SLURM_STEP_NUM_TASKS") or environ.get("SLURM_NTASKS") or "0"
    return int(value) if value.isdigit() else 0


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: ``"gpu[03-05,09],cpu1"`` -> ``"gpu03"``."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise RunnerError(f"cannot read the SLURM node list {nodelist!r}; set MASTER_ADDR")
    prefix, ranges = match[1], match[2]
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _tasks_on_node(spec: str) -> int:
    """Tasks on this node from ``SLURM_STEP_TASKS_PER_NODE`` (``"4(x2),3"`` -> 4)."""
    match = re.match(r"(\d+)", spec)
    return int(match[1]) if match else 1


def from_environ(environ: Mapping[str, str], endpoint: str = "") -> RankEnv:
    """This process's :class:`RankEnv`; ``endpoint`` (``HOST:PORT``) fills in a missing master."""
    host, _, port = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "")
    if "RANK" in environ and "WORLD_SIZE" in environ:
        rank, world_size = _int(environ, "RANK"), _int(environ, "WORLD_SIZE")
        local_rank = _int(environ, "LOCAL_RANK", 0)
        local_world_size = _int(environ, "LOCAL_WORLD_SIZE", world_size if local_rank == rank else 1)
        source = "env"
        master_addr = environ.get("MASTER_ADDR") or host
        master_port = _int(environ, "MASTER_PORT", int(port) if port else DEFAULT_PORT)
    elif "SLURM_PROCID" in environ:
        rank, world_size = _int(environ, "SLURM_PROCID"), _slurm_tasks(environ)
        local_rank = _int(environ, "SLURM_LOCALID", 0)
        local_world_size = _tasks_on_node(environ.get("SLURM_STEP_TASKS_PER_NODE", "1"))
        source = "slurm"
        nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or ""
        master_addr = environ.get("MASTER_ADDR") or host or (first_host(nodes) if nodes else "")
        job_port = 20000 + _int(environ, "SLURM_JOB_ID", 0) % 20000
        master_port = _int(environ, "MASTER_PORT", int(port) if port else job_port)
    else:
        raise RunnerError(
            "[backend] mode = 'join' but no launcher set RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS"
        )
    if not master_addr:
        raise RunnerError("set MASTER_ADDR (or [backend] rdzv_endpoint = 'HOST:PORT'): where rank 0 listens")
    if not 0 <= rank < world_size:
        raise RunnerError(f"rank {rank} is outside the world size {world_size} the launcher set")
    if not 0 <= local_rank < max(local_world_size, 1):
        local_world_size = local_rank + 1
    return RankEnv(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        local_world_size=local_world_size,
        master_addr=master_addr,
        master_port=master_port,
        restart_count=_int(environ, "TORCHELASTIC_RESTART_COUNT", 0),
        source=source,
    )
