"""Local plugin for ``bench/step_overhead.py``: the same data, model, task and optimizer
the hand-written loop uses, registered the way any runner plugin registers them.

Loaded with ``PluginManager(local_plugins=["bench_plugin"], use_entry_points=False)``.
It times training from the inside: ``on_begin_train`` and ``on_end_train`` record
``time.perf_counter()`` (wall) and ``time.thread_time()`` (CPU time of the training
thread) in :data:`TIMES`, so recipe parsing, building and run-directory writes are
excluded from the measurement.

The ``bench_null_*`` components do no tensor work at all (the loss and the optimizer
are stand-ins whose methods return at once): a run with them times the engine's own
per-step bookkeeping, which the MLP workload hides in its noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

import runner
from runner import hookimpl

#: Wall and thread CPU clocks at on_begin_train / on_end_train of the latest run, and its step count.
TIMES: dict[str, float] = {}
#: The latest run's trained model (for the equivalence check against the hand-written loop).
LAST_MODEL: dict[str, torch.nn.Module] = {}
#: Callables run (then dropped) in on_end_train with the live RunContext, for probes of engine internals.
PROBES: list[Callable[[runner.RunContext], None]] = []


class BlobDataset(torch.utils.data.TensorDataset):
    """In-memory random features and labels; ``meta`` tells the model its sizes."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__(features, labels)
        self.meta = {"in_features": features.shape[1], "num_classes": num_classes}


def make_tensors(n: int, in_features: int, num_classes: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark data; the hand-written loop calls this too, so both see the same tensors."""
    generator = torch.Generator().manual_seed(data_seed)
    features = torch.randn(n, in_features, generator=generator)
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    return features, labels


def make_mlp(in_features: int, hidden: int, num_classes: int) -> torch.nn.Module:
    """Linear → ReLU → Linear, shared with the hand-written loop."""
    return torch.nn.Sequential(
        torch.nn.Linear(in_features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, num_classes)
    )


def make_optimizer(model: torch.nn.Module, kind: str, lr: float) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW, with the same arguments on both sides of the benchmark."""
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr)
    raise ValueError(f"unknown optimizer {kind!r}")


class NullLoss:
    """Stands in for a loss tensor: backward and detach cost a method call."""

    def backward(self) -> None:
        return None

    def detach(self) -> NullLoss:
        return self


class NullOptimizer:
    """Stands in for an optimizer: step and zero_grad cost a method call."""

    def __init__(self) -> None:
        self.param_groups = [{"lr": 0.0}]

    def step(self) -> None:
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        return None


NULL_LOSS = NullLoss()


def null_step(batch: Any) -> NullLoss:
    """The null workload's whole forward pass (shared with the hand-written null loop)."""
    return NULL_LOSS


# -- factories the recipe names --------------------------------------------------------


def blobs(n: int = 8192, in_features: int = 64, num_classes: int = 10, data_seed: int = 1234) -> BlobDataset:
    """Random in-memory classification data."""
    features, labels = make_tensors(n, in_features, num_classes, data_seed)
    return BlobDataset(features, labels, num_classes)


def mlp(ctx: runner.BuildContext, hidden: int = 256) -> torch.nn.Module:
    """The benchmark MLP, sized from the training set's ``meta``."""
    meta = ctx.meta
    return make_mlp(meta["in_features"], hidden, meta["num_classes"])


class CrossEntropyTask(runner.Task):
    """Cross-entropy classification, with nothing beyond what the hand-written loop does."""

    def train_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        features, labels = batch
        loss = F.cross_entropy(model(features), labels)
        return runner.StepOutput(loss, {}, labels.shape[0])

    def val_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        return self.train_step(model, batch, step)


def cross_entropy() -> CrossEntropyTask:
    """Cross-entropy task."""
    return CrossEntropyTask()


def optimizer(model: torch.nn.Module, kind: str = "sgd", lr: float = 0.05) -> torch.optim.Optimizer:
    """SGD (momentum 0.9) or AdamW."""
    return make_optimizer(model, kind, lr)


class NullTask(runner.Task):
    """Returns a stand-in loss without touching the batch."""

    def train_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        return runner.StepOutput(null_step(batch), {}, 64)  # type: ignore[arg-type]

    def val_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        return self.train_step(model, batch, step)


def null_task() -> NullTask:
    """Null workload task (engine bookkeeping only)."""
    return NullTask()


def null_model() -> torch.nn.Module:
    """Null workload model (never called)."""
    return torch.nn.Identity()


def null_optimizer(model: torch.nn.Module) -> NullOptimizer:
    """Null workload optimizer."""
    return NullOptimizer()


# -- hooks -----------------------------------------------------------------------------


@hookimpl
def register_datasets(register: Any) -> None:
    register("bench_blobs", blobs)


@hookimpl
def register_models(register: Any) -> None:
    register("bench_mlp", mlp)
    register("bench_null_model", null_model)


@hookimpl
def register_tasks(register: Any) -> None:
    register("bench_ce", cross_entropy)
    register("bench_null_task", null_task)


@hookimpl
def register_optimizers(register: Any) -> None:
    register("bench_opt", optimizer)
    register("bench_null_opt", null_optimizer)


@hookimpl
def on_begin_train(run: runner.RunContext) -> None:
    TIMES["steps_at_begin"] = run.global_step
    TIMES["begin_cpu"] = time.thread_time()
    TIMES["begin"] = time.perf_counter()


@hookimpl
def on_end_train(run: runner.RunContext, global_step: int) -> None:
    TIMES["end"] = time.perf_counter()
    TIMES["end_cpu"] = time.thread_time()
    TIMES["steps"] = global_step - TIMES["steps_at_begin"]
    LAST_MODEL["model"] = run.model
    while PROBES:
        PROBES.pop(0)(run)
