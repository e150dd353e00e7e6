"""The ``async`` loader, declared once (torch-free: ``build`` imports the loader)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import at_least, component, param

if TYPE_CHECKING:
    from collections.abc import Callable

    from runner import LoaderConfig, Registry, SplitConfig
    from runner_dataserver.loader import AsyncLoader


@component
class AsyncLoaderParams:
    """Dataset built and batches collated in N server processes (or remote servers); the sampler stays here."""

    servers: int | list[str] = param(
        1, doc='Local server processes to start, or remote servers ["host:port", ...] (runner serve-data).'
    )
    prefetch: int = param(2, doc="Batches requested ahead per server (bounds memory: backpressure).", check=at_least(1))
    on_server_error: Literal["restart", "stop"] = param(
        "stop", doc="A failed server is restarted and its outstanding batches re-requested, or the run stops."
    )
    max_restarts: int = param(3, doc="Restarts allowed per loader before giving up.", check=at_least(0))
    timeout: float = param(120.0, doc="Seconds to wait for a batch before reporting the servers as stuck.")
    start_timeout: float = param(600.0, doc="Seconds a server may take to build its dataset.")
    start_method: Literal["forkserver", "spawn", "fork"] = param(
        "forkserver", doc="How local servers are started (multiprocessing start method)."
    )
    token_env: str = param(
        "RUNNER_DATASERVER_TOKEN", doc="Environment variable holding the token remote servers require."
    )

    def build(
        self,
        split: SplitConfig,
        registry: Registry,
        ctx: Any = None,
        train: bool = True,
        loader_config: LoaderConfig | None = None,
        sampler_factory: Callable[..., Any] | None = None,
    ) -> AsyncLoader:
        """An :class:`~runner_dataserver.loader.AsyncLoader` for ``split``, its servers
        building the split's dataset from the components in ``registry``."""
        from runner_dataserver.loader import build_async_loader

        return build_async_loader(
            self,
            split=split,
            registry=registry,
            ctx=ctx,
            train=train,
            loader_config=loader_config,
            sampler_factory=sampler_factory,
        )
