"""Entry module of the ``runner-dataserver`` plugin (torch-free: components are lazy references)."""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl


@hookimpl
def register_loaders(register: RegisterComponent) -> None:
    """Register the ``async`` loader."""
    register("async", "runner_dataserver.params:AsyncLoaderParams")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner serve-data``."""
    register(
        "serve-data", "runner_dataserver.cli:serve_data", help="Serve a recipe split's batches to remote trainers."
    )
