"""Entry module of the ``runner-dataserver`` plugin (torch-free: factories are lazy references)."""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterCommand, RegisterComponent
from runner_dataserver.params import AsyncLoaderParams


@hookimpl
def register_loaders(register: RegisterComponent) -> None:
    """Register the ``async`` loader."""
    register("async", "runner_dataserver.loader:build_async_loader", params=AsyncLoaderParams)


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner serve-data``."""
    register(
        "serve-data", "runner_dataserver.cli:serve_data", help="Serve a recipe split's batches to remote trainers."
    )
