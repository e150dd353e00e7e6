"""Whether a Ray cluster's address answers, found out in bounded time (Ray-free).

``ray.init(address=...)`` retries an address that does not answer for minutes (20 tries of
about 35 s each), printing its GCS retries. So before joining, :func:`probe` makes a plain
TCP connection to the address, with a deadline, and :func:`bounded_ray_connect` holds Ray's
own connection retries to one try of ``connect_timeout_s`` while ``ray.init`` runs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Iterator

#: The port a ``ray://HOST`` address without one uses (Ray Client's server).
RAY_CLIENT_PORT = 10001


def split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``"HOST:PORT"``, ``"[V6]:PORT"`` or ``"ray://HOST[:PORT]"``;
    None for an address without a port that is not ``ray://`` (left to Ray to interpret)."""
    client = address.startswith("ray://")
    rest = address[len("ray://") :] if client else address
    host, sep, port = rest.rpartition(":")
    if sep and port.isdigit() and (not host.count(":") or host.startswith("[")):
        return host.strip("[]"), int(port)
    if client and rest:
        return rest.strip("[]"), RAY_CLIENT_PORT
    return None


def probe(host: str, port: int, timeout: float, *, also: tuple[str, ...] = ()) -> str | None:
    """None when a TCP connection to ``host:port`` (or, failing that, to one of the ``also``
    hosts) opens within ``timeout`` seconds in all; else why ``host:port`` did not, in a
    few words."""
    deadline = time.monotonic() + timeout
    first: str | None = None
    for candidate in dict.fromkeys((host, *also)):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.create_connection((candidate, port), timeout=left):
                return None
        except TimeoutError:
            why = f"no answer within {timeout:g} s"
        except socket.gaierror as exc:
            why = f"unknown host ({exc.strerror or exc})"
        except OSError as exc:
            why = (exc.strerror or str(exc) or type(exc).__name__).lower()
        first = first or why
    return first or f"no answer within {timeout:g} s"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (Ray connects to the
    node's own address instead, so that is probed too)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def bounded_ray_connect(timeout: float) -> Iterator[None]:
    """While ``ray.init`` joins a cluster: one connection try (not 20) of at most about
    ``timeout`` seconds. Settings the user made in the environment are kept; ours are
    removed afterwards."""
    settings = {
        "RAY_gcs_server_port_wait_time_s": "1",  # tries of the GCS connection (one a second)
        "RAY_py_gcs_connect_timeout_s": str(max(1, round(timeout))),  # how long one try waits
    }
    added = [name for name in settings if name not in os.environ]
    os.environ.update({name: settings[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
