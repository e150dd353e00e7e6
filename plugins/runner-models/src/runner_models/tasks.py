"""The ``classification`` and ``regression`` tasks: loss and metrics of one batch.

Batches follow the batch convention (:func:`runner.batch_fields`): ``(inputs, targets)``
pairs or named fields (``inputs``/``input_ids``, ``targets``/``labels``), already on the
device. Extra fields such as ``lengths`` and ``attention_mask`` go to the model when its
``forward`` declares them. Training steps compute extra metrics only when the engine will
log them (``step.want_metrics``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from runner import RunContext, Stage, StepInfo, StepOutput, Task, batch_fields, batch_inputs, forward_kwargs
from runner_models.metrics import EpochMetrics, record_matrices


def predict(model: nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(outputs, targets)``: the model applied to the batch's inputs (and to the extra
    fields its ``forward`` declares, e.g. ``lengths``), and the batch's targets."""
    inputs, targets, extras = batch_fields(batch)
    outputs: torch.Tensor = model(inputs, **forward_kwargs(model, extras))
    return outputs, targets


def outputs_of(model: nn.Module, batch: Any) -> torch.Tensor:
    """The model applied to a batch that may have no targets (prediction)."""
    inputs, extras = batch_inputs(batch)
    outputs: torch.Tensor = model(inputs, **forward_kwargs(model, extras))
    return outputs


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose highest logit is the target class (a 0-d tensor).

    Float targets of the logits' shape are class probabilities; their argmax is the class.
    """
    if targets.is_floating_point() and targets.shape == logits.shape:
        targets = targets.argmax(-1)
    return (logits.argmax(-1) == targets).float().mean()


class EpochMetricsMixin:
    """Whole-epoch metrics named in the recipe (``metrics = [...]``), as run hooks of the task.

    The task is a run object: these methods reset the metrics when a validation/test loader
    begins and, when it ends, compute them (gathered from every process) and add the scalars
    to that loader's record (``run.log_metrics``); a confusion matrix goes to
    ``confusion_matrix.json`` and ``summary.json``.
    """

    epoch_metrics: EpochMetrics

    def setup(self, run: RunContext, stage: Stage) -> None:
        self.epoch_metrics.backend = run.backend

    def on_begin_val_epoch(self) -> None:
        self.epoch_metrics.reset()

    def on_begin_test_epoch(self) -> None:
        self.epoch_metrics.reset()

    def on_end_val_epoch(self, run: RunContext, key: str) -> None:
        self._finish(run, "val", key)

    def on_end_test_epoch(self, run: RunContext, key: str) -> None:
        self._finish(run, "test", key)

    def _finish(self, run: RunContext, stage: str, key: str) -> None:
        if not self.epoch_metrics or self.epoch_metrics.metrics is None:
            return
        scalars, others = self.epoch_metrics.compute()
        self.epoch_metrics.reset()
        if scalars:
            run.log_metrics(scalars, stage=stage)
        record_matrices(run, f"{stage}/{key}", others)


class ClassificationTask(EpochMetricsMixin, Task):
    """Cross-entropy on logits (with optional label smoothing in training); accuracy; the
    recipe's whole-epoch ``metrics``."""

    def __init__(self, label_smoothing: float = 0.0, metrics: list[str] | tuple[str, ...] = ()) -> None:
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"label_smoothing must be between 0 and 1, found {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.epoch_metrics = EpochMetrics(metrics, "classification")

    def train_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Loss to backpropagate; accuracy only when ``step.want_metrics``."""
        logits, targets = predict(model, batch)
        loss = F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing)
        logits = logits.detach()
        if not step.want_metrics:
            return StepOutput(loss=loss, count=targets.shape[0], outputs=(logits,))
        return StepOutput(
            loss=loss, metrics={"accuracy": accuracy(logits, targets)}, count=targets.shape[0], outputs=(logits,)
        )

    def val_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Plain cross-entropy (comparable across label smoothing settings) and accuracy."""
        logits, targets = predict(model, batch)
        loss = F.cross_entropy(logits, targets)
        self.epoch_metrics.update(logits, targets)
        return StepOutput(
            loss=loss, metrics={"accuracy": accuracy(logits, targets)}, count=targets.shape[0], outputs=(logits,)
        )

    def predict_step(self, model: nn.Module, batch: Any, step: StepInfo) -> dict[str, torch.Tensor]:
        """``class`` (the highest logit's index) and ``probabilities`` (softmax of the logits)."""
        logits = outputs_of(model, batch)
        return {"class": logits.argmax(-1), "probabilities": logits.float().softmax(-1)}


def align(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``targets`` shaped and typed like ``predictions`` (``(N,)`` targets for ``(N, 1)`` outputs).

    Raises instead of letting a shape mismatch broadcast silently.
    """
    if targets.shape != predictions.shape:
        if (*targets.shape, 1) == predictions.shape:
            targets = targets.unsqueeze(-1)
        else:
            raise ValueError(
                f"regression outputs of shape {tuple(predictions.shape)} do not match targets of shape "
                f"{tuple(targets.shape)}; set the model's out_features"
            )
    if targets.dtype != predictions.dtype:
        targets = targets.to(predictions.dtype)
    return targets


class RegressionTask(EpochMetricsMixin, Task):
    """Mean squared error; mean absolute error (``mae``); the recipe's whole-epoch ``metrics``."""

    def __init__(self, metrics: list[str] | tuple[str, ...] = ()) -> None:
        self.epoch_metrics = EpochMetrics(metrics, "regression")

    def train_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """MSE loss to backpropagate; mae only when ``step.want_metrics``."""
        predictions, targets = predict(model, batch)
        targets = align(predictions, targets)
        loss = F.mse_loss(predictions, targets)
        predictions = predictions.detach()
        if not step.want_metrics:
            return StepOutput(loss=loss, count=targets.shape[0], outputs=(predictions,))
        mae = (predictions - targets).abs().mean()
        return StepOutput(loss=loss, metrics={"mae": mae}, count=targets.shape[0], outputs=(predictions,))

    def val_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """MSE loss and mae."""
        predictions, targets = predict(model, batch)
        targets = align(predictions, targets)
        loss = F.mse_loss(predictions, targets)
        mae = (predictions - targets).abs().mean()
        self.epoch_metrics.update(predictions, targets)
        return StepOutput(loss=loss, metrics={"mae": mae}, count=targets.shape[0], outputs=(predictions,))

    def predict_step(self, model: nn.Module, batch: Any, step: StepInfo) -> dict[str, torch.Tensor]:
        """``prediction``: the model's output, one number per sample when it has one output."""
        predictions = outputs_of(model, batch)
        if predictions.dim() == 2 and predictions.shape[1] == 1:
            predictions = predictions.squeeze(-1)
        return {"prediction": predictions}
