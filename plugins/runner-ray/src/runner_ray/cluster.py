"""Connecting to Ray: import it with a useful error, join or start a cluster, stop what we started."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from runner import RunnerError
from runner_ddp.backend import Stopped, keep_signal_handlers

INSTALL_HINT = "pip install 'runner-ray[ray]' (or pip install 'ray[train]')"


def require_ray(what: str) -> ModuleType:
    """The ``ray`` module, or a :class:`RunnerError` saying how to install it."""
    try:
        with warnings.catch_warnings():  # Ray's own import-time deprecation notices
            warnings.simplefilter("ignore")
            import ray
    except ImportError as exc:
        raise RunnerError(f"{what} needs Ray, which is not installed ({exc}); {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str, local_cpus: int | None, what: str) -> Iterator[ModuleType]:
    """Ray, connected: an already initialised Ray is used as it is; otherwise ``address``
    (or ``$RAY_ADDRESS``) is joined, or a local instance started, and shut down on exit."""
    ray = require_ray(what)
    if ray.is_initialized():
        yield ray
        return
    # No dashboard: it costs seconds at start-up. (Ray Train's placement-group cleaner then
    # warns that the state API is unavailable; harmless.)
    options: dict[str, object] = {"include_dashboard": False, "logging_level": logging.WARNING}
    target = address or os.environ.get("RAY_ADDRESS", "")
    if target and target != "local":
        options["address"] = target
    else:
        options["address"] = "local"
        options["num_cpus"] = local_cpus or os.cpu_count() or 1
    with keep_signal_handlers():  # ray.init installs handlers of its own and leaves them
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {target!r}" if target and target != "local" else "a local Ray instance"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunnerError(f"{what}: cannot connect to {where}: {first}") from None
        try:
            with stop_on_sigterm():
                yield ray
        finally:
            ray.shutdown()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds the driver with runner_ddp's ``Stopped`` (one line, exit 143), so a
    local Ray instance is shut down rather than orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        # KeyboardInterrupt is the exception a blocking ray.get() lets through.
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except KeyboardInterrupt:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
