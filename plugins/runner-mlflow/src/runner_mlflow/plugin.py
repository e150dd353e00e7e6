"""Entry module of the ``runner-mlflow`` plugin (torch-free): registers the logger lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``mlflow``."""
    register(
        "mlflow",
        "runner_mlflow.logger:MlflowLogger",
        params="runner_mlflow.params:MlflowParams",
        doc="MLflow tracking: the recipe as params, metrics per step, the recipe and final checkpoint path "
        "as artifacts. One SQLite store (./mlflow.db) shared by every run started in the same directory by default.",
    )
