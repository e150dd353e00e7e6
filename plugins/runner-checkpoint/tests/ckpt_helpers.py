"""Shared helpers and fixtures of the runner-checkpoint tests.

Test modules import the fixtures they use from here (``cli_fixture`` provides ``cli``;
``isolate_process_state`` is autouse). There is deliberately no conftest.py: several test
directories of this repository are collected together and a conftest module is
importable as plain ``conftest`` only once.

Recipes use the local plugin ``ckpt_plugin.py`` (dataset, model, task, optimizer,
scheduler, stateful callback) so these tests need no other runner plugin. Only this
plugin's entry point is enabled (``RUNNER_PLUGINS=checkpoint``). Runs happen either
in-process through the real CLI (``cli``) or as separate ``runner`` processes
(``spawn``), which is what the kill tests need.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import tomli_w
import torch

from runner.testing import run_cli
from runner_checkpoint import faults
from runner_checkpoint.verify_resume import runner_argv

PLUGIN = Path(__file__).resolve().with_name("ckpt_plugin.py")
ENV = {"RUNNER_PLUGINS": "checkpoint"}

BASE_RECIPE: dict[str, Any] = {
    "plugins": [str(PLUGIN)],
    "run": {
        "name": "ckpt",
        "seed": 7,
        "epochs": 3,
        "log_every": 1,
        "val_every": 5,
        "deterministic": True,
        "device": "cpu",
    },
    "data": {
        "train": {
            "dataset": {"name": "ckpt_blobs", "split": "train", "n": 50},
            "loader": {"batch_size": 4, "shuffle": True},
        },
        "val": {
            "main": {"dataset": {"name": "ckpt_blobs", "split": "val", "n": 16}, "loader": {"batch_size": 8}},
            "extra": {
                "dataset": {"name": "ckpt_blobs", "split": "val", "n": 12, "data_seed": 3},
                "loader": {"batch_size": 8},
            },
        },
        "test": {"main": {"dataset": {"name": "ckpt_blobs", "split": "test", "n": 16}, "loader": {"batch_size": 8}}},
    },
    "model": {"name": "ckpt_mlp"},
    "task": {"name": "ckpt_task"},
    "optimizer": {"name": "ckpt_adamw"},
    "scheduler": {"name": "ckpt_steplr"},
    "callbacks": [{"name": "ckpt_counter"}],
    "checkpoint": {"name": "default", "every_n_steps": 4, "keep_last": 2},
}
#: 50 samples in batches of 4: 13 optimizer steps per epoch, 39 in all.
STEPS_PER_EPOCH = 13


def write_recipe(path: Path, **changes: Any) -> Path:
    """Write the base recipe with ``changes`` (``"run.epochs": 2``; None deletes a key)."""
    data = copy.deepcopy(BASE_RECIPE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@attrs.frozen
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs ``runner ...`` in this process, returning exit code, stdout and stderr."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str | Path) -> Result:
        code, out, err = run_cli(*args)
        return Result(code, out, err)


def run_main(*args: str | Path) -> int:
    """``runner ARGS`` in this process, for fixtures without ``capsys``; the exit code."""
    return run_cli(*args, env=ENV).exit_code


def spawn(*args: str | Path, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``runner ARGS`` as its own process (stdout and stderr piped)."""
    full_env = {**os.environ, **ENV, **(env or {})}
    return subprocess.Popen(
        runner_argv([str(a) for a in args]), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def finish(process: subprocess.Popen[bytes], timeout: float = 300) -> Result:
    out, err = process.communicate(timeout=timeout)
    return Result(process.returncode, out.decode(), err.decode())


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.fixture(name="cli")
def cli_fixture(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return Cli(capsys)


@pytest.fixture(autouse=True)
def isolate_process_state() -> Iterator[None]:
    """In-process runs change global state: deterministic mode, RNGs, signal handlers."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    faults.hook = None
    torch.use_deterministic_algorithms(deterministic)
    random.setstate(rng[0])
    np.random.set_state(rng[1])
    torch.set_rng_state(rng[2])
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
