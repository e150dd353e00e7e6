"""Entry module of the ``runner-wandb`` plugin (torch-free, wandb-free): registers the logger lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``wandb``."""
    register("wandb", "runner_wandb.components:Wandb")
