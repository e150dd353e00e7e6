"""Parameters of the tasks, optimizers and learning-rate schedulers."""

from __future__ import annotations

from typing import Literal

import attrs

from runner import at_least, param
from runner_models.params.checks import betas, probability, unit_interval
from runner_models.params.metrics import classification_metrics, regression_metrics


@attrs.define
class ClassificationParams:
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


@attrs.define
class RegressionParams:
    """Mean squared error; reports mean absolute error (mae), and whole-epoch metrics by name."""

    metrics: list[str] = param(
        [],
        doc="Whole-epoch validation/test metrics (torchmetrics, synchronised across processes): mae, mse, rmse, r2.",
        check=regression_metrics,
    )


@attrs.define
class SGDParams:
    """Stochastic gradient descent (torch.optim.SGD)."""

    lr: float = param(0.01, doc="Learning rate.", check=at_least(0))
    momentum: float = param(0.0, doc="Momentum factor.", check=probability)
    weight_decay: float = param(0.0, doc="L2 penalty.", check=at_least(0))
    nesterov: bool = param(False, doc="Nesterov momentum (needs momentum > 0).")


@attrs.define
class AdamParams:
    """Adam (torch.optim.Adam)."""

    lr: float = param(1e-3, doc="Learning rate.", check=at_least(0))
    betas: tuple[float, float] = param((0.9, 0.999), doc="Decay rates of the moment estimates.", check=betas)
    eps: float = param(1e-8, doc="Term added to the denominator for stability.", check=at_least(0))
    weight_decay: float = param(0.0, doc="L2 penalty added to the gradient.", check=at_least(0))


@attrs.define
class AdamWParams:
    """AdamW: Adam with decoupled weight decay (torch.optim.AdamW)."""

    lr: float = param(1e-3, doc="Learning rate.", check=at_least(0))
    betas: tuple[float, float] = param((0.9, 0.999), doc="Decay rates of the moment estimates.", check=betas)
    eps: float = param(1e-8, doc="Term added to the denominator for stability.", check=at_least(0))
    weight_decay: float = param(0.01, doc="Decoupled weight decay.", check=at_least(0))


@attrs.define
class ConstantParams:
    """Keep the optimizer's learning rate."""


@attrs.define
class StepParams:
    """Multiply the learning rate by gamma every step_size optimizer steps."""

    step_size: int = param(doc="Optimizer steps between decays.", check=at_least(1))
    gamma: float = param(0.1, doc="Decay factor.", check=at_least(0))


@attrs.define
class CosineParams:
    """Optional linear warmup, then cosine decay to min_lr at the last optimizer step of the run."""

    min_lr: float = param(0.0, doc="Learning rate at the end of the run (eta_min).", check=at_least(0))
    warmup_steps: int = param(
        0, doc="Optimizer steps of linear warmup from lr / warmup_steps to lr.", check=at_least(0)
    )


@attrs.define
class LinearWarmupParams:
    """Linear warmup, then a constant learning rate or a linear decay to min_lr at the end of the run."""

    warmup_steps: int = param(doc="Optimizer steps of linear warmup from lr / warmup_steps to lr.", check=at_least(0))
    decay: Literal["none", "linear"] = param("none", doc="After warmup: keep lr (none) or decay linearly (linear).")
    min_lr: float = param(0.0, doc="Learning rate at the end of the run with decay = 'linear'.", check=at_least(0))
