"""Entry module of the ``runner-tensorboard`` plugin (torch-free): registers the logger lazily."""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_tensorboard.params import TensorBoardParams


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``tensorboard``."""
    register(
        "tensorboard",
        "runner_tensorboard.logger:TensorBoardLogger",
        params=TensorBoardParams,
        doc=TensorBoardParams.__doc__,
    )
