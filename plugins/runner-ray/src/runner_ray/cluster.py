"""Connecting to Ray: import it with a useful error, join (in bounded time) or start a cluster, stop what we started."""

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
from runner_ray.reach import bounded_ray_connect, is_loopback, probe, split_address

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
def ray_session(
    address: str, local_cpus: int | None, what: str, connect_timeout_s: float = 30.0, *, log_to_driver: bool = True
) -> Iterator[ModuleType]:
    """Ray, connected: an already initialised Ray is used as it is; otherwise ``address``
    (or ``$RAY_ADDRESS``) is joined, or a local instance started, and shut down on exit.

    Joining gives up after about ``connect_timeout_s`` seconds with one line naming the
    address (a :class:`RunnerError`), instead of Ray's minutes of retries.
    ``log_to_driver=False``: the workers' output stays in Ray's logs."""
    ray = require_ray(what)
    if ray.is_initialized():
        yield ray
        return
    # No dashboard: it costs seconds at start-up. (Ray Train's placement-group cleaner then
    # warns that the state API is unavailable; harmless.)
    options: dict[str, object] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": log_to_driver,
    }
    target = address or os.environ.get("RAY_ADDRESS", "")
    joining = bool(target) and target != "local"
    where = "a local Ray instance"
    if joining:
        options["address"] = target
        where = f"the Ray cluster at {target!r}" + ("" if address else " ($RAY_ADDRESS)")
        why = unreachable(ray, target, connect_timeout_s)
        if why:
            raise RunnerError(f"{what}: cannot connect to {where}: {why}")
    else:
        options["address"] = "local"
        options["num_cpus"] = local_cpus or os.cpu_count() or 1
    bounded = bounded_ray_connect(connect_timeout_s) if joining else contextlib.nullcontext()
    with keep_signal_handlers():  # ray.init installs handlers of its own and leaves them
        try:
            with bounded:
                ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RunnerError(f"{what}: cannot connect to {where}: {first}") from None
        try:
            with stop_on_sigterm():
                yield ray
        finally:
            ray.shutdown()


def unreachable(ray: Any, target: str, timeout: float) -> str | None:
    """Why nothing answers at the cluster address ``target`` within ``timeout`` seconds
    (a plain TCP connection), or None when something does or the address is Ray's to find."""
    if target == "auto":  # as Ray looks for it: $RAY_ADDRESS, else the last `ray start` here
        target = os.environ.get("RAY_ADDRESS", "") or _last_started_cluster(ray)
    parts = split_address(target)
    if parts is None:
        return None
    host, port = parts
    # Ray joins a loopback address at this node's own IP: either answering will do.
    also = (_node_ip(ray),) if is_loopback(host) and not target.startswith("ray://") else ()
    why = probe(host, port, timeout, also=tuple(a for a in also if a))
    if why and why.startswith("no answer"):
        why += " (connect_timeout_s; raise it for a slow network)"
    return why and f"{why}; check the address and that the cluster runs (ray status)"


def _last_started_cluster(ray: Any) -> str:
    try:  # Ray's own record of the last `ray start` on this machine (not a public API)
        return str(ray._private.utils.read_ray_address() or "")
    except Exception:
        return ""


def _node_ip(ray: Any) -> str:
    try:
        return str(ray.util.get_node_ip_address())
    except Exception:
        return ""


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
