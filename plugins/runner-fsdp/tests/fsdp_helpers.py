"""Helpers of the runner-fsdp tests: recipes for the local test plugin and CLI runs."""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

HERE = Path(__file__).resolve().parent
TEST_PLUGIN = HERE / "fsdp_testplugin.py"
#: Variables that would make the backend join a launcher instead of launching.
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
)
#: The plugins these tests use (nothing else is loaded: faster starts).
PLUGINS = "checkpoint,ddp,fsdp,models"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without launcher variables, one thread per process, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env.setdefault("OMP_NUM_THREADS", "1")
    env["RUNNER_PLUGINS"] = PLUGINS
    env.update(extra)
    return env


def recipe(
    *,
    backend: str = "fsdp",
    nproc: int = 2,
    epochs: int = 2,
    stop_at: int = 0,
    fsdp: Mapping[str, Any] | None = None,
    checkpoint: Mapping[str, Any] | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """60 training samples in batches of 3 per process, a 3-block model, AdamW."""
    tree: dict[str, Any] = {
        "plugins": [str(TEST_PLUGIN)],
        "run": {
            "name": "fsdp-test",
            "seed": 0,
            "epochs": epochs,
            "log_every": 1,
            "backend": backend,
            "device": "cpu",
            "test": False,
        },
        "data": {
            "train": {
                "dataset": {"name": "fsdp_indexed", "split": "train", "num_samples": 60, "record": record},
                "loader": {"batch_size": 3, "shuffle": True},
            },
            "val": {
                "main": {
                    "dataset": {"name": "fsdp_indexed", "split": "val", "num_samples": 31, "record": False},
                    "loader": {"batch_size": 8},
                }
            },
        },
        "model": {"name": "fsdp_blocks"},
        "task": {"name": "classification"},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "callbacks": [{"name": "fsdp_stop", "step": stop_at}],
    }
    if backend in ("ddp", "fsdp"):
        tree["backend"] = {"nproc_per_node": nproc, "timeout_s": 60, "start_method": "fork"}
    if backend == "fsdp":
        tree["backend"].update({"wrap": ["Block"], **(fsdp or {})})
    if checkpoint is not None:
        tree["checkpoint"] = {"name": "default", **checkpoint}
    return tree


def write_recipe(path: Path, tree: Mapping[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(dict(tree)), encoding="utf-8")
    return path


def runner_script() -> str:
    found = Path(sys.executable).with_name("runner")
    return str(found) if found.exists() else (shutil.which("runner") or "runner")


@dataclass(frozen=True)
class Ran:
    """One ``runner`` invocation."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.1f}s\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def run_cli(*args: str | Path, env: Mapping[str, str] | None = None, timeout: float = 300) -> Ran:
    """``runner ARGS`` in a subprocess of its own process group (a timeout stops the workers too)."""
    started = time.time()
    proc = subprocess.Popen(
        [runner_script(), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else clean_env(),
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return Ran(proc.returncode, stdout, stderr, time.time() - started)


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def train_losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in records(run_dir) if r["stage"] == "train"]


def indices(run_dir: Path) -> list[tuple[int, int]]:
    """``(epoch, index)`` of every sample any rank read."""
    found = []
    for path in sorted(run_dir.glob("indices-rank*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            epoch, index = map(int, line.split())
            found.append((epoch, index))
    return found


def counts(seen: list[tuple[int, int]], epoch: int) -> collections.Counter[int]:
    """How often each sample was read in ``epoch`` (all ranks)."""
    return collections.Counter(index for e, index in seen if e == epoch)
