"""A tiny, complete runner plugin for the core tests.

It registers everything a recipe needs (dataset, model, task, optimizer) plus callbacks
that observe the run, the way a third-party plugin would. Like a real plugin it imports
no torch at module level, so ``runner recipe check`` stays torch-free with it loaded.

``probe`` callbacks write what they saw to ``<run_dir>/<file>`` as JSON when the run ends.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import attrs

from runner import StepOutput, Task, at_least, hookimpl, param


@attrs.define
class ToyParams:
    """Points in ``features`` dimensions labelled by the sign of the first coordinate."""

    split: Literal["train", "val", "test"] = param("train", doc="Which fixed sample to draw.")
    n: int = param(64, doc="Number of samples.", check=at_least(1))
    features: int = param(4, doc="Input dimensions.", check=at_least(1))


def _tensors(split: str, n: int, features: int) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
    x = torch.randn(n, features, generator=generator)
    y = (x[:, 0] > 0).long()
    return x, y


def toy(split: str = "train", n: int = 64, features: int = 4) -> Any:
    """In-memory tensors: the loader's fast path."""
    import torch

    dataset = torch.utils.data.TensorDataset(*_tensors(split, n, features))
    dataset.meta = {"in_features": features, "num_classes": 2}  # type: ignore[attr-defined]
    return dataset


class Rows:
    """The same samples as :func:`toy` behind plain ``__getitem__``: the general path."""

    def __init__(self, split: str = "train", n: int = 64, features: int = 4) -> None:
        self.x, self.y = _tensors(split, n, features)
        self.meta = {"in_features": features, "num_classes": 2}

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        return self.x[index], self.y[index]


def lin(ctx: Any, hidden: int = 0) -> Any:
    """A linear classifier, or a one-hidden-layer MLP when ``hidden`` > 0."""
    import torch

    features, classes = ctx.meta["in_features"], ctx.meta["num_classes"]
    if hidden == 0:
        return torch.nn.Linear(features, classes)
    return torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))


class Classify(Task):
    """Cross-entropy with an accuracy metric."""

    def train_step(self, model: Any, batch: Any, step: Any) -> StepOutput:
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        metrics = {"accuracy": (logits.argmax(1) == y).float().mean()} if step.want_metrics else {}
        return StepOutput(F.cross_entropy(logits, y), metrics, len(y))

    val_step = train_step


def sgd(model: Any, lr: float = 0.1, momentum: float = 0.0) -> Any:
    """Plain SGD."""
    import torch

    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


class StopAfter:
    """Asks the engine to stop once ``steps`` optimizer steps are done."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_end_train_step(self, run: Any, global_step: int) -> None:
        if global_step >= self.steps:
            run.should_stop = True
            run.stop_reason = f"stop_after reached step {global_step}"


def _norm(tensors: Any) -> float:
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


class Probe:
    """Records hook calls, gradient norms after backward, the norm of each parameter
    update divided by the learning rate (the gradient the optimizer applied) and the
    final weights; written to ``<run_dir>/<file>`` at teardown.
    """

    def __init__(self, ctx: Any, file: str = "probe.json") -> None:
        self.path = ctx.run_dir / file
        self.events: list[list[Any]] = []
        self.backward_grad_norms: list[float] = []
        self.applied_grad_norms: list[float] = []
        self.before: list[Any] = []
        self.weights: dict[str, list[Any]] = {}

    def on_begin_train(self, run: Any) -> None:
        self.events.append(["begin_train"])

    def on_begin_train_epoch(self, run: Any, epoch: int, global_step: int) -> None:
        self.events.append(["begin_epoch", epoch, global_step])

    def on_end_backward(self, run: Any, global_step: int, loss: Any) -> None:
        params = list(run.model.parameters())
        self.backward_grad_norms.append(_norm(p.grad for p in params))
        self.before = [p.detach().clone() for p in params]

    def on_end_train_step(self, run: Any, global_step: int) -> None:
        self.events.append(["step", global_step])
        lr = run.optimizers[0].param_groups[0]["lr"]
        after = list(run.model.parameters())
        self.applied_grad_norms.append(_norm((b - a) / lr for a, b in zip(after, self.before, strict=True)))

    def on_end_train_epoch(self, run: Any, epoch: int, global_step: int) -> None:
        self.events.append(["end_epoch", epoch, global_step])

    def on_end_val_epoch(self, run: Any, global_step: int, key: str, metrics: dict[str, float]) -> None:
        self.events.append(["val", key, global_step])

    def on_end_train(self, run: Any, global_step: int) -> None:
        self.events.append(["end_train", global_step])
        self.weights = {k: v.tolist() for k, v in run.model.state_dict().items()}

    def teardown(self, run: Any) -> None:
        self.events.append(["teardown"])
        report = {
            "events": self.events,
            "backward_grad_norms": self.backward_grad_norms,
            "applied_grad_norms": self.applied_grad_norms,
            "weights": self.weights,
        }
        self.path.write_text(json.dumps(report), encoding="utf-8")


@hookimpl
def register_datasets(register: Any) -> None:
    register("dst_toy", toy, params=ToyParams)
    register("dst_toy_rows", Rows, params=ToyParams, doc="The toy samples without the tensor fast path.")


@hookimpl
def register_models(register: Any) -> None:
    register("dst_lin", lin)


@hookimpl
def register_tasks(register: Any) -> None:
    register("dst_cls", Classify)


@hookimpl
def register_optimizers(register: Any) -> None:
    register("dst_sgd", sgd)


@hookimpl
def register_callbacks(register: Any) -> None:
    register("dst_stop_after", StopAfter)
    register("dst_probe", Probe)


# -- runner-dataserver test datasets ----------------------------------------------------


class Numbers:
    """Sample i is (tensor([i, i*i]) float, i % 3); crashes its server once at ``crash_at``
    (the first time only: ``marker`` records that it happened) when set."""

    def __init__(
        self, n: int = 50, crash_at: int = -1, marker: str = "", fail_at: int = -1, delay: float = 0.0
    ) -> None:
        import time

        time.sleep(delay)
        self.n, self.crash_at, self.marker, self.fail_at = n, crash_at, marker, fail_at
        self.meta = {"in_features": 2, "num_classes": 3}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[Any, int]:
        import os

        import torch

        if index == self.crash_at and self.marker and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        if index == self.fail_at:
            raise ValueError(f"sample {index} is broken")
        return torch.tensor([float(index), float(index * index)]), index % 3


@hookimpl
def register_datasets(register: Any) -> None:  # noqa: F811
    register("dst_toy", toy, params=ToyParams)
    register("dst_toy_rows", Rows, params=ToyParams, doc="The toy samples without the tensor fast path.")
    register("dst_numbers", Numbers)
