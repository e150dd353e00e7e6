"""Entry module of the ``runner-models`` plugin: registers its components by name.

Imports only the torch-free parameter classes; factories are lazy references.
"""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_models.params import models, training


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``mlp`` and ``cnn``."""
    register("mlp", "runner_models.mlp:build", params=models.MLPParams, doc=models.MLPParams.__doc__)
    register("cnn", "runner_models.cnn:build", params=models.CNNParams, doc=models.CNNParams.__doc__)


@hookimpl
def register_tasks(register: RegisterComponent) -> None:
    """Register ``classification`` and ``regression``."""
    register(
        "classification",
        "runner_models.tasks:ClassificationTask",
        params=training.ClassificationParams,
        doc=training.ClassificationParams.__doc__,
    )
    register(
        "regression",
        "runner_models.tasks:RegressionTask",
        params=training.RegressionParams,
        doc=training.RegressionParams.__doc__,
    )


@hookimpl
def register_optimizers(register: RegisterComponent) -> None:
    """Register ``sgd``, ``adam`` and ``adamw``."""
    for name, params in (("sgd", training.SGDParams), ("adam", training.AdamParams), ("adamw", training.AdamWParams)):
        register(name, f"runner_models.optimizers:build_{name}", params=params, doc=params.__doc__)


@hookimpl
def register_schedulers(register: RegisterComponent) -> None:
    """Register ``constant``, ``step``, ``cosine`` and ``linear_warmup``."""
    schedulers = (
        ("constant", training.ConstantParams),
        ("step", training.StepParams),
        ("cosine", training.CosineParams),
        ("linear_warmup", training.LinearWarmupParams),
    )
    for name, params in schedulers:
        register(name, f"runner_models.schedulers:build_{name}", params=params, doc=params.__doc__)
