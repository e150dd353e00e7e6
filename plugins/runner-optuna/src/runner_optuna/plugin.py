"""Entry module of the ``runner-optuna`` plugin (imports neither Optuna nor torch)."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_sweepers(register: RegisterComponent) -> None:
    """Register ``optuna``: TPE (or random) search with pruning."""
    register("optuna", "runner_optuna.components:Optuna")
