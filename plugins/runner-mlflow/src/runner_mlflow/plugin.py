"""Entry module of the ``runner-mlflow`` plugin (torch-free): registers the logger lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``mlflow``."""
    register("mlflow", "runner_mlflow.components:Mlflow")
