"""The tasks, optimizers and learning-rate schedulers.

Optimizers are built over the model's trainable parameters; schedulers are stepped once
per optimizer step and return a ``torch.optim.lr_scheduler.LRScheduler`` (so they
checkpoint with ``state_dict``). ``min_lr`` is an absolute learning rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runner import at_least, check, component, param
from runner_models.components.checks import betas, probability, unit_interval
from runner_models.components.metrics import classification_metrics, regression_metrics

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.optim.lr_scheduler import LRScheduler

    from runner_models import tasks

# -- tasks -----------------------------------------------------------------------------------


@component
class Classification:
    """Cross-entropy on logits; reports accuracy, and whole-epoch metrics by name."""

    label_smoothing: float = param(
        0.0, doc="Label smoothing of the training loss (validation loss is plain cross-entropy).", check=unit_interval
    )
    metrics: list[str] = param(
        [],
        doc="Whole-epoch validation/test metrics (torchmetrics, synchronised across processes): accuracy, "
        "top<k>_accuracy, precision_macro/_micro, recall_macro/_micro, f1_macro/_micro, auroc, confusion_matrix.",
        check=classification_metrics,
    )

    def build(self) -> tasks.ClassificationTask:
        from runner_models import tasks

        return tasks.ClassificationTask(label_smoothing=self.label_smoothing, metrics=self.metrics)


@component
class Regression:
    """Mean squared error; reports mean absolute error (mae), and whole-epoch metrics by name."""

    metrics: list[str] = param(
        [],
        doc="Whole-epoch validation/test metrics (torchmetrics, synchronised across processes): mae, mse, rmse, r2.",
        check=regression_metrics,
    )

    def build(self) -> tasks.RegressionTask:
        from runner_models import tasks

        return tasks.RegressionTask(metrics=self.metrics)


# -- optimizers ------------------------------------------------------------------------------


@component
class SGD:
    """Stochastic gradient descent (torch.optim.SGD)."""

    lr: float = param(0.01, doc="Learning rate.", check=at_least(0))
    momentum: float = param(0.0, doc="Momentum factor.", check=probability)
    weight_decay: float = param(0.0, doc="L2 penalty.", check=at_least(0))
    nesterov: bool = param(False, doc="Nesterov momentum (needs momentum > 0).")

    @check("nesterov", "momentum")
    def _nesterov_needs_momentum(self) -> str | None:
        if self.nesterov and self.momentum <= 0:
            return f"nesterov = true needs momentum > 0, found momentum = {self.momentum}"
        return None

    def build(self, model: nn.Module) -> torch.optim.SGD:
        """``torch.optim.SGD`` over the model's trainable parameters."""
        import torch

        from runner_models.optimizers import trainable

        if self.nesterov and self.momentum <= 0:  # built from Python without the recipe checks
            raise ValueError(f"nesterov = true needs momentum > 0, found momentum = {self.momentum}")
        return torch.optim.SGD(
            trainable(model),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
        )


@component
class Adam:
    """Adam (torch.optim.Adam)."""

    lr: float = param(1e-3, doc="Learning rate.", check=at_least(0))
    betas: tuple[float, float] = param((0.9, 0.999), doc="Decay rates of the moment estimates.", check=betas)
    eps: float = param(1e-8, doc="Term added to the denominator for stability.", check=at_least(0))
    weight_decay: float = param(0.0, doc="L2 penalty added to the gradient.", check=at_least(0))

    def build(self, model: nn.Module) -> torch.optim.Adam:
        """``torch.optim.Adam`` over the model's trainable parameters."""
        import torch

        from runner_models.optimizers import trainable

        beta1, beta2 = self.betas
        return torch.optim.Adam(
            trainable(model), lr=self.lr, betas=(beta1, beta2), eps=self.eps, weight_decay=self.weight_decay
        )


@component
class AdamW:
    """AdamW: Adam with decoupled weight decay (torch.optim.AdamW)."""

    lr: float = param(1e-3, doc="Learning rate.", check=at_least(0))
    betas: tuple[float, float] = param((0.9, 0.999), doc="Decay rates of the moment estimates.", check=betas)
    eps: float = param(1e-8, doc="Term added to the denominator for stability.", check=at_least(0))
    weight_decay: float = param(0.01, doc="Decoupled weight decay.", check=at_least(0))

    def build(self, model: nn.Module) -> torch.optim.AdamW:
        """``torch.optim.AdamW`` (decoupled weight decay) over the model's trainable parameters."""
        import torch

        from runner_models.optimizers import trainable

        beta1, beta2 = self.betas
        return torch.optim.AdamW(
            trainable(model), lr=self.lr, betas=(beta1, beta2), eps=self.eps, weight_decay=self.weight_decay
        )


# -- schedulers ------------------------------------------------------------------------------


@component
class Constant:
    """Keep the optimizer's learning rate."""

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim.lr_scheduler import LambdaLR

        from runner_models.schedulers import constant_factor

        return LambdaLR(optimizer, constant_factor)


@component
class Step:
    """Multiply the learning rate by gamma every step_size optimizer steps."""

    step_size: int = param(doc="Optimizer steps between decays.", check=at_least(1))
    gamma: float = param(0.1, doc="Decay factor.", check=at_least(0))

    def build(self, optimizer: torch.optim.Optimizer) -> LRScheduler:
        from torch.optim.lr_scheduler import StepLR

        if self.step_size < 1:
            raise ValueError(f"step_size must be at least 1, found {self.step_size}")
        return StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)


@component
class Cosine:
    """Optional linear warmup, then cosine decay to min_lr at the last optimizer step of the run."""

    min_lr: float = param(0.0, doc="Learning rate at the end of the run (eta_min).", check=at_least(0))
    warmup_steps: int = param(
        0, doc="Optimizer steps of linear warmup from lr / warmup_steps to lr.", check=at_least(0)
    )

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int | None = None) -> LRScheduler:
        import functools

        from runner_models.schedulers import check_total_steps, cosine_factor, per_group

        total = check_total_steps(total_steps)
        schedule = functools.partial(cosine_factor, warmup_steps=self.warmup_steps, total_steps=total)
        return per_group(optimizer, schedule, self.min_lr)


@component
class LinearWarmup:
    """Linear warmup, then a constant learning rate or a linear decay to min_lr at the end of the run."""

    warmup_steps: int = param(doc="Optimizer steps of linear warmup from lr / warmup_steps to lr.", check=at_least(0))
    decay: Literal["none", "linear"] = param("none", doc="After warmup: keep lr (none) or decay linearly (linear).")
    min_lr: float = param(0.0, doc="Learning rate at the end of the run with decay = 'linear'.", check=at_least(0))

    def build(self, optimizer: torch.optim.Optimizer, total_steps: int | None = None) -> LRScheduler:
        import functools

        from runner_models.schedulers import check_total_steps, linear_factor, per_group

        if self.decay not in ("none", "linear"):
            raise ValueError(f"decay must be 'none' or 'linear', found {self.decay!r}")
        linear = self.decay == "linear"
        total = check_total_steps(total_steps) if linear else (total_steps or 1)
        schedule = functools.partial(linear_factor, warmup_steps=self.warmup_steps, total_steps=total, decay=linear)
        return per_group(optimizer, schedule, self.min_lr if linear else 0.0)
