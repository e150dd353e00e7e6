"""Entry module of the ``runner-wandb`` plugin (torch-free, wandb-free): registers the logger lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    """Register ``wandb``."""
    register(
        "wandb",
        "runner_wandb.logger:WandbLogger",
        params="runner_wandb.params:WandbParams",
        doc="Weights & Biases: the resolved recipe as config, metrics by step, a summary and, with log_model, "
        "the final model as an artifact. Offline run files in the run directory by default (wandb sync uploads "
        "them).",
    )
