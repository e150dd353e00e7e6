"""The train/val/test step contract (PyMarlin ``ModuleInterface``) that tasks implement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from runner._contract.batch import batch_inputs, forward_kwargs
from runner._contract.stage import Stage

if TYPE_CHECKING:
    import torch


@attrs.define(slots=True)
class StepInfo:
    """Where a step happens. The engine reuses one instance per stage and updates it."""

    stage: Stage
    global_step: int = 0
    epoch: int = 0
    device: Any = "cpu"
    want_metrics: bool = True
    """True when the engine will log this step's metrics; skip costly metrics otherwise."""


@attrs.define(slots=True)
class StepOutput:
    """What a step returns.

    ``loss`` is the tensor to backpropagate (train) or to average (val/test).
    ``metrics`` maps names to per-batch means (tensors or floats), averaged by the engine
    weighted by ``count`` (the number of samples in the batch). ``outputs`` carries extra
    tensors (logits...) to callbacks.
    """

    loss: torch.Tensor | None = None
    metrics: dict[str, Any] = attrs.Factory(dict)
    count: int = 1
    outputs: tuple[Any, ...] = ()


class Task:
    """Base class for tasks: subclass and implement :meth:`train_step` and :meth:`val_step`.

    The engine moves each batch to the device before calling a step.
    """

    def train_step(self, model: torch.nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """One training micro-batch: return the loss to backpropagate (and metrics)."""
        raise NotImplementedError(f"{type(self).__name__} must implement train_step")

    def val_step(self, model: torch.nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """One validation batch (no gradients): return the loss and metrics to average."""
        raise NotImplementedError(f"{type(self).__name__} must implement val_step")

    def test_step(self, model: torch.nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """One test batch; defaults to :meth:`val_step`."""
        return self.val_step(model, batch, step)

    def predict_step(self, model: torch.nn.Module, batch: Any, step: StepInfo) -> dict[str, Any]:
        """One batch of predictions (``runner predict``, :meth:`runner.LoadedRun.predict`).

        Returns named outputs, each a tensor with one row per sample of the batch
        (``{"class": ..., "probabilities": ...}``). Called with the model in eval mode,
        without gradients, on a batch that may have no targets; ``step.stage`` is
        :attr:`Stage.TEST`. The default returns the model's output as ``{"output": ...}``
        (see :func:`default_predict_step`); override it to return what users want to read.
        """
        return default_predict_step(model, batch)

    def forward(self, stage: Stage, model: torch.nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Dispatch to the step of ``stage`` (PyMarlin ``forward(stage, ...)``)."""
        if stage is Stage.TRAIN:
            return self.train_step(model, batch, step)
        if stage is Stage.VAL:
            return self.val_step(model, batch, step)
        if stage is Stage.TEST:
            return self.test_step(model, batch, step)
        raise ValueError(f"unknown stage {stage!r}")


def default_predict_step(model: Any, batch: Any) -> dict[str, Any]:
    """``{"output": model(inputs, **extras)}``: the prediction of a task without a
    ``predict_step`` (inputs and extras as :func:`runner.batch_inputs` finds them)."""
    inputs, extras = batch_inputs(batch)
    return {"output": model(inputs, **forward_kwargs(model, extras))}
