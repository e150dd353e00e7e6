"""Entry module of the ``runner-mlflow`` plugin (torch-free): registers the logger lazily."""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_mlflow.params import MlflowParams


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``mlflow``."""
    register("mlflow", "runner_mlflow.logger:MlflowLogger", params=MlflowParams, doc=MlflowParams.__doc__)
