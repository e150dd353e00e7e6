"""Entry module of the ``runner-ddp`` plugin: the ``ddp`` backend.

Imports only torch-free modules; the backend is a lazy reference. Evaluation sharding is
a method of the backend object, so it fires only in runs that chose ``ddp``. The train
loader's global position is plugin state (owner ``ddp``) rather than the backend's: a
checkpoint written by several ranks may be resumed by a run on another backend (the
single process), whose backend object knows nothing of it. ``get_state`` returns nothing
outside ddp runs; ``update_state`` is called only with a ddp checkpoint's position.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from runner import RegisterComponent, hookimpl

if TYPE_CHECKING:
    from runner import RunContext


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``ddp``."""
    register("ddp", "runner_ddp.params:DDPParams")


def _is_ddp_run(run: RunContext) -> bool:
    backend_module = sys.modules.get("runner_ddp.backend")  # not imported: no ddp rank in this process
    return backend_module is not None and isinstance(run.backend, backend_module.DDP)


@hookimpl
def get_state(run: RunContext) -> dict[str, Any] | None:
    """In ddp runs: the train loader's global sample position, so any world size can resume it."""
    if not _is_ddp_run(run):
        return None
    from runner_ddp import sharding

    position = sharding.position(run)
    return {"position": position} if position is not None else None


@hookimpl
def update_state(run: RunContext, state: dict[str, Any]) -> None:
    """Continue a ddp checkpoint's epoch from its global sample position (on any backend)."""
    from runner_ddp import sharding

    sharding.resume(run, state.get("position"))
