"""Entry module of the ``runner-tensorboard`` plugin (torch-free): registers the logger lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``tensorboard``."""
    register("tensorboard", "runner_tensorboard.components:TensorBoard")
