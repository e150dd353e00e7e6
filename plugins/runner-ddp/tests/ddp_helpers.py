"""Helpers of the runner-ddp tests: recipes for the local test plugin and CLI runs."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from runner.testing import runner_command

HERE = Path(__file__).resolve().parent
TEST_PLUGIN = HERE / "ddp_testplugin.py"
#: Variables that would make the ddp backend join a launcher instead of launching.
LAUNCHER_VARIABLES = (
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "GROUP_RANK",
    "TORCHELASTIC_RESTART_COUNT",
    "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_USE_AGENT_STORE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_STEP_NUM_TASKS",
    "SLURM_LOCALID",
)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without launcher variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env


def recipe(
    *,
    backend: str = "ddp",
    nproc: int = 2,
    num_samples: int = 60,
    val_samples: int = 31,
    batch_size: int = 3,
    epochs: int = 2,
    source: str = "synthetic",
    faults: Mapping[str, Any] | None = None,
    checkpoint: bool = False,
    ddp: Mapping[str, Any] | None = None,
    optimizer: Mapping[str, Any] | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """A small classification recipe using the test plugin's ``indexed`` dataset."""
    data: dict[str, Any] = {
        "train": {
            "dataset": {
                "name": "indexed",
                "split": "train",
                "source": source,
                "num_samples": num_samples,
                "record": record,
            },
            "loader": {"batch_size": batch_size, "shuffle": True},
        },
        "val": {
            "main": {
                "dataset": {
                    "name": "indexed",
                    "split": "val",
                    "source": source,
                    "num_samples": val_samples,
                    "record": False,
                },
                "loader": {"batch_size": 8},
            }
        },
    }
    tree: dict[str, Any] = {
        "plugins": [str(TEST_PLUGIN)],
        "run": {
            "name": "ddp-test",
            "seed": 0,
            "epochs": epochs,
            "log_every": 1,
            "backend": backend,
            "device": "cpu",
            "test": False,
        },
        "data": data,
        "model": {"name": "mlp", "hidden": [16]},
        "task": {"name": "classification"},
        "optimizer": dict(optimizer or {"name": "sgd", "lr": 0.1}),
        "callbacks": [{"name": "faults", **(faults or {})}],
    }
    if backend == "ddp":
        tree["backend"] = {"nproc_per_node": nproc, "timeout_s": 20, "start_method": "fork", **(ddp or {})}
    if checkpoint:
        tree["checkpoint"] = {"name": "step"}
    return tree


def write_recipe(path: Path, tree: Mapping[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(dict(tree)), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Ran:
    """One ``runner`` invocation."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    ended: float

    def __str__(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.1f}s\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"

    @property
    def errors(self) -> list[str]:
        return [line.removeprefix("error: ") for line in self.stderr.splitlines() if line.startswith("error: ")]


def run_cli(
    *args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 240, cwd: Path | None = None
) -> Ran:
    """``runner ARGS`` in a subprocess with a clean launcher environment (in ``cwd``, if given)."""
    started = time.time()
    proc = subprocess.Popen(
        [*runner_command(), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        cwd=cwd,
        start_new_session=True,  # its own process group: a timeout stops the workers too
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    ended = time.time()
    return Ran(proc.returncode, stdout, stderr, ended - started, ended)


def indices(run_dir: Path, pattern: str = "indices-rank*.txt") -> list[tuple[int, int, int]]:
    """``(attempt, epoch, index)`` of every sample any rank read."""
    found = []
    for path in sorted(run_dir.glob(pattern)):
        for line in path.read_text(encoding="utf-8").splitlines():
            attempt, epoch, index = map(int, line.split())
            found.append((attempt, epoch, index))
    return found


def counts(seen: list[tuple[int, int, int]], epoch: int) -> collections.Counter[int]:
    """How often each sample was read in ``epoch`` (all attempts, all ranks)."""
    return collections.Counter(index for _, e, index in seen if e == epoch)


def pids_alive(run_dir: Path) -> list[int]:
    """Worker pids (recorded by the test plugin) that still exist."""
    alive = []
    for path in run_dir.glob("pid-*.txt"):
        pid = int(path.read_text(encoding="utf-8"))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "\nState:\tZ" in status.read_text(encoding="utf-8"):
            alive.append(-pid)  # a zombie
        else:
            alive.append(pid)
    return alive
