"""Entry module of the ``runner-models`` plugin: registers its components by name.

Imports nothing: every component is a lazy reference to its declaration in
:mod:`runner_models.components`.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl

_MODELS = "runner_models.components.models"
_TRAINING = "runner_models.components.training"


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``mlp``, ``cnn`` and ``rnn``."""
    register("mlp", f"{_MODELS}:MLP")
    register("cnn", f"{_MODELS}:CNN")
    register("rnn", f"{_MODELS}:RNN")


@hookimpl
def register_tasks(register: RegisterComponent) -> None:
    """Register ``classification`` and ``regression``."""
    register("classification", f"{_TRAINING}:Classification")
    register("regression", f"{_TRAINING}:Regression")


@hookimpl
def register_optimizers(register: RegisterComponent) -> None:
    """Register ``sgd``, ``adam`` and ``adamw``."""
    register("sgd", f"{_TRAINING}:SGD")
    register("adam", f"{_TRAINING}:Adam")
    register("adamw", f"{_TRAINING}:AdamW")


@hookimpl
def register_schedulers(register: RegisterComponent) -> None:
    """Register ``constant``, ``step``, ``cosine`` and ``linear_warmup``."""
    register("constant", f"{_TRAINING}:Constant")
    register("step", f"{_TRAINING}:Step")
    register("cosine", f"{_TRAINING}:Cosine")
    register("linear_warmup", f"{_TRAINING}:LinearWarmup")
