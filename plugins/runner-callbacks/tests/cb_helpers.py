"""Helpers of the runner-callbacks tests: a stand-in run for unit tests, the digits recipe."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[3]
DIGITS = ROOT / "recipes" / "digits.toml"
DIGITS_CALLBACKS = ROOT / "recipes" / "digits_callbacks.toml"


class OneProcess:
    world_size, rank, is_primary = 1, 0, True

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


class FakeRun:
    """The parts of runner.RunContext the callbacks use, recording what they ask for."""

    def __init__(self, model: Any = None, log_every: int = 1, optimizers: list[Any] | None = None) -> None:
        self.model = model
        self.optimizers = optimizers or []
        self.scaler: Any = None
        self.backend = OneProcess()
        self.device = torch.device("cpu")
        self.is_primary = True
        self.recipe = SimpleNamespace(run=SimpleNamespace(log_every=log_every))
        self.global_step = 0
        self.samples_seen = 0
        self.data_wait = 0.0
        self.should_stop = False
        self.stop_reason = ""
        self.logged: dict[str, float] = {}
        self.summary: dict[str, Any] = {}

    def request_stop(self, reason: str) -> None:
        self.should_stop = True
        self.stop_reason = self.stop_reason or reason

    def log_metrics(self, values: dict[str, float], *, stage: str = "train") -> None:
        self.logged.update(values)

    def add_summary(self, key: str, value: Any) -> None:
        self.summary[key] = value


def val_record(step: int, **metrics: float) -> dict[str, Any]:
    return {"stage": "val", "key": "main", "epoch": 0, "step": step, **metrics}
