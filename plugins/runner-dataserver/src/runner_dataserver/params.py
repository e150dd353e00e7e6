"""Recipe parameters of the ``async`` loader (torch-free)."""

from __future__ import annotations

from typing import Literal

import attrs

from runner import at_least, param


@attrs.define
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
