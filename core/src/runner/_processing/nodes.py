"""Multi-node processing needs one cache directory that every node shares.

Ranks write their shards into the cache and the primary (rank 0, on node 0) merges them,
so a node with a cache directory of its own (a local disk instead of a network
filesystem) would process its share into a place the primary never reads, and the
primary would wait for those shards in vain. So before any rank processes anything, the
primary writes a marker, ``nodes/<launch>-<step key>``, into the cache, and every other
rank waits until it sees that marker. A rank that does not see it in time stops with one
line naming the cache, its node and what to do.

``<launch>`` names the launch every rank shares (``$TORCHELASTIC_RUN_ID``, else
``$MASTER_ADDR:$MASTER_PORT``, else ``$RUNNER_PROCESS_LAUNCH``), so a marker left by an
earlier launch does not vouch for this one where the launcher names its launches.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from runner._contract.errors import DataError

#: How long a rank waits for the primary's marker, in seconds ($RUNNER_SHARED_CACHE_TIMEOUT).
DEFAULT_TIMEOUT = 120.0


def launch_id(env: Mapping[str, str] | None = None) -> str:
    """A name of this launch every rank computes alike (file-name safe)."""
    env = os.environ if env is None else env
    run_id = env.get("TORCHELASTIC_RUN_ID", "")
    if run_id and run_id != "none":
        raw = run_id
    elif env.get("MASTER_ADDR") and env.get("MASTER_PORT"):
        raw = f"{env['MASTER_ADDR']}-{env['MASTER_PORT']}"
    else:
        raw = env.get("RUNNER_PROCESS_LAUNCH", "launch")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", raw)[:80]


def marker_path(root: Path, step_key: str, env: Mapping[str, str] | None = None) -> Path:
    return root / "nodes" / f"{launch_id(env)}-{step_key}"


def write_marker(root: Path, step_key: str, world_size: int, env: Mapping[str, str] | None = None) -> Path:
    """The primary's marker (written atomically)."""
    path = marker_path(root, step_key, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": socket.gethostname(), "world_size": world_size}) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def wait_for_marker(
    root: Path,
    step_key: str,
    *,
    where: str,
    rank: int,
    node_rank: int,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Wait until the primary's marker is visible here; a :class:`DataError` after ``timeout``."""
    env = os.environ if env is None else env
    if timeout is None:
        timeout = float(env.get("RUNNER_SHARED_CACHE_TIMEOUT", DEFAULT_TIMEOUT))
    path = marker_path(root, step_key, env)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() >= deadline:
            raise DataError(
                f"{where}: cache {root} is not shared with node 0: rank {rank} on node {node_rank} "
                f"({socket.gethostname()}) did not see node 0's marker nodes/{path.name} within {timeout:g} s; "
                "multi-node processing needs a cache directory every node shares (a network filesystem): "
                "set the step's cache_dir or $RUNNER_CACHE_DIR to one"
            )
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


__all__ = ["DEFAULT_TIMEOUT", "launch_id", "marker_path", "wait_for_marker", "write_marker"]
