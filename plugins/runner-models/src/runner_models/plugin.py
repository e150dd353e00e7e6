"""Entry module of the ``runner-models`` plugin: registers its components by name.

Imports only the torch-free parameter classes; factories are lazy references.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``mlp``, ``cnn`` and ``rnn``."""
    register("mlp", "runner_models.mlp:build", params="runner_models.params.models:MLPParams")
    register("cnn", "runner_models.cnn:build", params="runner_models.params.models:CNNParams")
    register("rnn", "runner_models.rnn:build", params="runner_models.params.models:RNNParams")


@hookimpl
def register_tasks(register: RegisterComponent) -> None:
    """Register ``classification`` and ``regression``."""
    register(
        "classification",
        "runner_models.tasks:ClassificationTask",
        params="runner_models.params.training:ClassificationParams",
    )
    register(
        "regression",
        "runner_models.tasks:RegressionTask",
        params="runner_models.params.training:RegressionParams",
    )


@hookimpl
def register_optimizers(register: RegisterComponent) -> None:
    """Register ``sgd``, ``adam`` and ``adamw``."""
    for name, params in (
        ("sgd", "runner_models.params.training:SGDParams"),
        ("adam", "runner_models.params.training:AdamParams"),
        ("adamw", "runner_models.params.training:AdamWParams"),
    ):
        register(name, f"runner_models.optimizers:build_{name}", params=params)


@hookimpl
def register_schedulers(register: RegisterComponent) -> None:
    """Register ``constant``, ``step``, ``cosine`` and ``linear_warmup``."""
    schedulers = (
        ("constant", "runner_models.params.training:ConstantParams"),
        ("step", "runner_models.params.training:StepParams"),
        ("cosine", "runner_models.params.training:CosineParams"),
        ("linear_warmup", "runner_models.params.training:LinearWarmupParams"),
    )
    for name, params in schedulers:
        register(name, f"runner_models.schedulers:build_{name}", params=params)
