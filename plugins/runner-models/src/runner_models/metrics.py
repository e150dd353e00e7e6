"""Whole-epoch metrics for the bundled tasks, computed with torchmetrics.

A task updates an :class:`EpochMetrics` with every validation/test batch and computes
it when the loader's epoch ends (the task's ``on_end_val_epoch``), so F1, AUROC or R² are
those of the whole epoch, not means of per-batch values. With several processes the
metric states are gathered from every rank through the backend's ``all_reduce_sum`` (the
only collective the contract guarantees), so every rank computes the same values as one
process would over the same samples. Scalars go into the loader's record; a confusion
matrix, which is not a scalar, goes into ``confusion_matrix.json`` in the run directory and
into ``summary.json``.

torchmetrics imports torchvision whenever it is installed, and PyPI's CUDA torchvision
wheel beside a CPU-only torch fails to import; so an installed torchvision is imported
first through :func:`runner.import_torchvision`, in every process that builds metrics
(each DDP worker too).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

import runner
from runner_models.components.metrics import TOP_K

NON_SCALAR = ("confusion_matrix",)
CONFUSION_FILE = "confusion_matrix.json"


def gather_with(backend: Any) -> Callable[..., list[torch.Tensor]]:
    """A torchmetrics ``dist_sync_fn``: every rank's copy of a tensor, in rank order, built
    on ``backend.all_reduce_sum`` (shapes may differ between ranks: list states)."""

    def gather(tensor: torch.Tensor, group: Any = None) -> list[torch.Tensor]:
        world, rank = backend.world_size, backend.rank
        device = tensor.device
        flat = tensor.detach().reshape(-1).to(torch.float64)
        dims = max(tensor.dim(), 1)
        shapes = torch.zeros(world, dims + 1, dtype=torch.float64, device=device)
        shapes[rank, 0] = tensor.dim()
        shapes[rank, 1 : 1 + tensor.dim()] = torch.tensor(tensor.shape, dtype=torch.float64)
        shapes = backend.all_reduce_sum(shapes).long().cpu()
        sizes = [int(torch.prod(shapes[r, 1 : 1 + int(shapes[r, 0])]).item()) for r in range(world)]
        buffer = torch.zeros(world, max(max(sizes), 1), dtype=torch.float64, device=device)
        buffer[rank, : flat.numel()] = flat
        buffer = backend.all_reduce_sum(buffer)
        return [
            buffer[r, : sizes[r]].to(tensor.dtype).reshape(tuple(shapes[r, 1 : 1 + int(shapes[r, 0])].tolist()))
            for r in range(world)
        ]

    return gather


def _torchmetrics() -> ModuleType:
    """``torchmetrics``, imported after an installed torchvision (see the module docstring)."""
    if find_spec("torchvision") is not None:  # torchmetrics does without it
        runner.import_torchvision()
    import torchmetrics

    return torchmetrics


def classification_metric(name: str, num_classes: int) -> Any:
    """The torchmetrics object for a classification metric name (``params.metrics``)."""
    tmc = _torchmetrics().classification

    top_k = TOP_K.fullmatch(name)
    if top_k:
        return tmc.MulticlassAccuracy(num_classes, top_k=min(int(top_k[1]), num_classes), average="micro")
    kind, _, average = name.rpartition("_")
    builders: dict[str, Callable[[], Any]] = {
        "accuracy": lambda: tmc.MulticlassAccuracy(num_classes, average="micro"),
        "auroc": lambda: tmc.MulticlassAUROC(num_classes, average="macro"),
        "confusion_matrix": lambda: tmc.MulticlassConfusionMatrix(num_classes),
    }
    if name in builders:
        return builders[name]()
    classes = {"precision": tmc.MulticlassPrecision, "recall": tmc.MulticlassRecall, "f1": tmc.MulticlassF1Score}
    return classes[kind](num_classes, average=average)


def regression_metric(name: str, outputs: int) -> Any:
    """The torchmetrics object for a regression metric name."""
    tmr = _torchmetrics().regression

    if name == "r2":
        return tmr.R2Score(multioutput="uniform_average")
    return {
        "mae": tmr.MeanAbsoluteError,
        "mse": tmr.MeanSquaredError,
        "rmse": lambda: tmr.MeanSquaredError(squared=False),
    }[name]()


class EpochMetrics:
    """The metrics a task's recipe names, accumulated over one loader's epoch.

    Built on the first batch (the number of classes is the logits' width); call
    :meth:`reset` when an epoch begins, :meth:`update` per batch and :meth:`compute` at
    its end (collective: every rank must call it).
    """

    def __init__(self, names: Sequence[str], kind: str) -> None:
        self.names = list(names)
        self.kind = kind
        self.metrics: dict[str, Any] | None = None
        self.backend: Any = None

    def __bool__(self) -> bool:
        return bool(self.names)

    def _build(self, predictions: torch.Tensor) -> dict[str, Any]:
        width = predictions.shape[-1] if predictions.dim() > 1 else 1
        make = classification_metric if self.kind == "classification" else regression_metric
        metrics = {name: make(name, width).to(predictions.device) for name in self.names}
        backend = self.backend
        if backend is not None:  # gather through the run's backend, whatever its transport
            for metric in metrics.values():
                metric.dist_sync_fn = gather_with(backend)
                metric.distributed_available_fn = lambda: backend.world_size > 1
        return metrics

    def reset(self) -> None:
        for metric in (self.metrics or {}).values():
            metric.reset()

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        if not self.names:
            return
        predictions = predictions.detach().float()
        if self.metrics is None:
            self.metrics = self._build(predictions)
        if self.kind == "classification":
            if targets.is_floating_point() and targets.shape == predictions.shape:
                targets = targets.argmax(-1)
            predictions = predictions.softmax(-1)
            targets = targets.long()
        elif predictions.dim() > 1 and predictions.shape[-1] == 1:  # (N, 1) outputs: one target
            predictions, targets = predictions.squeeze(-1), targets.reshape(-1)
        for metric in self.metrics.values():
            metric.update(predictions, targets.to(predictions.device) if self.kind == "classification" else targets)

    def compute(self) -> tuple[dict[str, float], dict[str, Any]]:
        """``(scalars, matrices)`` of the epoch: scalars for the record, the rest as JSON lists."""
        scalars: dict[str, float] = {}
        others: dict[str, Any] = {}
        for name, metric in (self.metrics or {}).items():
            value = metric.compute()
            if name in NON_SCALAR:
                others[name] = value.long().tolist()
            else:
                scalars[name] = float(value)
        return scalars, others


def record_matrices(run: Any, group: str, values: dict[str, Any]) -> None:
    """Write the epoch's non-scalar metrics (the confusion matrix) into ``confusion_matrix.json``
    (latest per ``stage/key``) and ``summary.json`` (``extras``); the primary process writes."""
    matrix = values.get("confusion_matrix")
    if matrix is None:
        return
    entry = {"step": run.global_step, "epoch": run.epoch, "matrix": matrix}
    path = Path(run.run_dir) / CONFUSION_FILE
    if run.is_primary:
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        known = known if isinstance(known, dict) else {}
        known[group] = entry
        path.write_text(json.dumps(known) + "\n", encoding="utf-8")
        run.add_summary("confusion_matrix", known)
