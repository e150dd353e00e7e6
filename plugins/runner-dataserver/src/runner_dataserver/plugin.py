"""Entry module of the ``runner-dataserver`` plugin (torch-free: factories are lazy references)."""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl


@hookimpl
def register_loaders(register: RegisterComponent) -> None:
    """Register the ``async`` loader."""
    register(
        "async",
        "runner_dataserver.loader:build_async_loader",
        params="runner_dataserver.params:AsyncLoaderParams",
        doc="Dataset built and batches collated in N server processes (or remote servers); the sampler stays here.",
    )


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner serve-data``."""
    register(
        "serve-data", "runner_dataserver.cli:serve_data", help="Serve a recipe split's batches to remote trainers."
    )
