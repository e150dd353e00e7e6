"""A small local plugin for the checkpoint tests, loaded from recipes (``plugins = [...]``).

Everything that could make a resumed run diverge is exercised: a map-style dataset
without the tensor fast path (so ``num_workers`` really uses worker processes) with a
per-sample augmentation, dropout (torch RNG), a task that draws from python's and
numpy's global RNGs, AdamW state, a step scheduler, and a callback whose state travels
through ``get_state``/``update_state`` and shows up in every train record.
"""

from __future__ import annotations

import random
import signal
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import runner
from runner import hookimpl


class Blobs(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Gaussian clusters; samples are tuples fetched one by one (no ``tensors`` attribute)."""

    def __init__(self, split: str, n: int, features: int, classes: int, data_seed: int) -> None:
        offset = {"train": 0, "val": 1, "test": 2}[split]
        generator = torch.Generator().manual_seed(data_seed * 10 + offset)
        centers = torch.randn(classes, features, generator=torch.Generator().manual_seed(data_seed))
        self.y = torch.randint(0, classes, (n,), generator=generator)
        self.x = centers[self.y] + 0.8 * torch.randn(n, features, generator=generator)
        self.meta = {"in_features": features, "num_classes": classes}

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        # A deterministic per-sample jitter: the same whatever the worker or resume point.
        jitter = torch.randn(self.x.shape[1], generator=torch.Generator().manual_seed(index)) * 0.01
        return self.x[index] + jitter, self.y[index]


def blobs(split: str = "train", n: int = 48, features: int = 6, classes: int = 3, data_seed: int = 0) -> Blobs:
    """Map-style Gaussian clusters."""
    return Blobs(split, n, features, classes, data_seed)


def mlp(ctx: runner.BuildContext, hidden: int = 16, dropout: float = 0.2) -> torch.nn.Module:
    """Linear, ReLU, dropout, linear."""
    meta = ctx.meta
    return torch.nn.Sequential(
        torch.nn.Linear(meta["in_features"], hidden),
        torch.nn.ReLU(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(hidden, meta["num_classes"]),
    )


class Task(runner.Task):
    """Cross-entropy; train records carry a probe of python's and numpy's global RNGs."""

    def train_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        probe = random.random() + float(np.random.random())
        accuracy = (logits.argmax(1) == y).float().mean()
        return runner.StepOutput(loss, {"accuracy": accuracy, "probe": probe}, len(y))

    def val_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        x, y = batch
        logits = model(x)
        accuracy = (logits.argmax(1) == y).float().mean()
        return runner.StepOutput(F.cross_entropy(logits, y), {"accuracy": accuracy}, len(y))


def task() -> Task:
    """Cross-entropy classification with RNG probes."""
    return Task()


def adamw(model: torch.nn.Module, lr: float = 0.02) -> torch.optim.Optimizer:
    """AdamW."""
    return torch.optim.AdamW(model.parameters(), lr=lr)


def steplr(optimizer: torch.optim.Optimizer, step_size: int = 4, gamma: float = 0.8) -> Any:
    """StepLR."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


class Counter:
    """Counts steps and sums losses; its state is checkpointed and logged in train records."""

    def __init__(self) -> None:
        self.steps = 0
        self.total = torch.zeros(())

    def on_end_train_step(self, outputs: Any) -> None:
        self.steps += 1
        self.total = self.total + outputs.loss.detach()

    def on_log(self, record: dict[str, Any]) -> None:
        if record.get("stage") == "train":
            record["counter"] = self.steps
            record["loss_sum"] = float(self.total)

    def get_state(self) -> dict[str, Any]:
        return {"ckpt_counter": {"steps": self.steps, "total": self.total, "history": (1, 2.5, None)}}

    def update_state(self, state: dict[str, Any]) -> None:
        mine = state["ckpt_counter"]
        assert mine["history"] == (1, 2.5, None)
        self.steps = mine["steps"]
        self.total = mine["total"].clone()


def counter() -> Counter:
    """A stateful callback."""
    return Counter()


class Leaky:
    """Counts steps in train records but does not checkpoint its count: not resume-safe."""

    def __init__(self) -> None:
        self.steps = 0

    def on_end_train_step(self) -> None:
        self.steps += 1

    def on_log(self, record: dict[str, Any]) -> None:
        if record.get("stage") == "train":
            record["leaky"] = self.steps


class BadState:
    """Returns a set from ``get_state`` (which no checkpoint can hold) from step ``from_step`` on."""

    def __init__(self, from_step: int) -> None:
        self.from_step = from_step
        self.steps = 0

    def on_end_train_step(self) -> None:
        self.steps += 1

    def get_state(self) -> dict[str, Any]:
        return {"ckpt_bad/seen": {"ids": {1, 2} if self.steps >= self.from_step else [1, 2]}}

    def update_state(self, state: dict[str, Any]) -> None:
        pass


def bad_state(from_step: int = 0) -> BadState:
    """A callback whose state cannot be checkpointed."""
    return BadState(from_step)


def leaky() -> Leaky:
    """A callback that forgets its state on resume."""
    return Leaky()


class RaiseSignal:
    """Sends this process ``signum`` once optimizer step ``at_step`` has ended."""

    def __init__(self, at_step: int, signum: str) -> None:
        self.at_step = at_step
        self.signum = getattr(signal, signum)

    def on_end_train_step(self, global_step: int) -> None:
        if global_step == self.at_step:
            signal.raise_signal(self.signum)


def raise_signal(at_step: int, signum: str = "SIGTERM") -> RaiseSignal:
    """Simulate a preemption notice."""
    return RaiseSignal(at_step, signum)


class StepFile:
    """Writes each ended optimizer step to ``path``, one line each (read by tests from
    another thread while the run goes on)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_end_train_step(self, global_step: int) -> None:
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(f"{global_step}\n")


def step_file(path: str) -> StepFile:
    """Record the steps as they end."""
    return StepFile(path)


@hookimpl
def register_datasets(register: Any) -> None:
    register("ckpt_blobs", blobs)


@hookimpl
def register_models(register: Any) -> None:
    register("ckpt_mlp", mlp)


@hookimpl
def register_tasks(register: Any) -> None:
    register("ckpt_task", task)


@hookimpl
def register_optimizers(register: Any) -> None:
    register("ckpt_adamw", adamw)


@hookimpl
def register_schedulers(register: Any) -> None:
    register("ckpt_steplr", steplr)


@hookimpl
def register_callbacks(register: Any) -> None:
    register("ckpt_counter", counter)
    register("ckpt_leaky", leaky)
    register("ckpt_bad_state", bad_state)
    register("ckpt_signal", raise_signal)
    register("ckpt_steps", step_file)
