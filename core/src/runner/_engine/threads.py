"""How many intra-op threads a training process gets (``[run] num_threads``).

torch starts one intra-op thread per core in every process. With several training
processes on one machine, or loader workers next to them, those threads outnumber the
cores and spend their time waiting for each other (a small GRU measured 6.7 s with 1
thread and 113 s with 2 on a busy 2-core machine): the default divides the physical cores
this process may use among the local training processes and leaves one per loader worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_TOPOLOGY = Path("/sys/devices/system/cpu")


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int] | None = None, topology: Path = _TOPOLOGY) -> int:
    """Physical cores among ``cpus`` (hyper-threads of one core count once); the number of
    logical CPUs where the topology cannot be read."""
    cpus = usable_cpus() if cpus is None else cpus
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        base = topology / f"cpu{cpu}" / "topology"
        try:
            package = (base / "physical_package_id").read_text().strip()
            core = (base / "core_id").read_text().strip()
        except OSError:
            package, core = "cpu", str(cpu)
        cores.add((package, core))
    return max(1, len(cores))


def local_processes(world_size: int, environ: Mapping[str, str]) -> int:
    """Training processes on this machine: the launcher's ``LOCAL_WORLD_SIZE`` when set,
    else every process of the run (the conservative guess)."""
    value = environ.get("LOCAL_WORLD_SIZE", "")
    return int(value) if value.isdigit() and int(value) > 0 else max(1, world_size)


def default_threads(
    *, cores: int, processes: int, loader_workers: int, environ: Mapping[str, str]
) -> tuple[int | None, str]:
    """``(threads, why)``: None when ``OMP_NUM_THREADS`` decides (torch reads it itself)."""
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp:
        return None, f"OMP_NUM_THREADS={omp}"
    share = cores // max(1, processes)
    threads = max(1, share - loader_workers)
    why = f"{cores} physical cores / {processes} local process{'es' if processes != 1 else ''}"
    if loader_workers:
        why += f" - {loader_workers} loader worker{'s' if loader_workers != 1 else ''}"
    return threads, why


def choose_threads(
    requested: int | None, *, world_size: int, loader_workers: int, environ: Mapping[str, str] | None = None
) -> tuple[int | None, str]:
    """The thread count for this process (None: leave torch's, set by OMP_NUM_THREADS) and why."""
    environ = os.environ if environ is None else environ
    if requested is not None:
        return requested, "[run] num_threads"
    return default_threads(
        cores=physical_cores(),
        processes=local_processes(world_size, environ),
        loader_workers=loader_workers,
        environ=environ,
    )


def apply_threads(
    requested: int | None, *, world_size: int, loader_workers: int, environ: Mapping[str, str] | None = None
) -> int:
    """Set torch's intra-op threads for this process (before its first operation) and
    return the count in effect."""
    import torch

    threads, _ = choose_threads(requested, world_size=world_size, loader_workers=loader_workers, environ=environ)
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
