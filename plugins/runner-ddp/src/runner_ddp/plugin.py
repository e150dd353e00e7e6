"""Entry module of the ``runner-ddp`` plugin: the ``ddp`` backend, plus the hooks that keep
sample accounting exact across ranks (evaluation shards, resume on another world size).

Imports only torch-free modules; the backend is a lazy reference to its declaration
(:class:`runner_ddp.params.DDPParams`) and the hooks import
:mod:`runner_ddp.sharding` when a run calls them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner import RegisterComponent, hookimpl

if TYPE_CHECKING:
    from runner import RunContext, Stage


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``ddp``."""
    register("ddp", "runner_ddp.params:DDPParams")


@hookimpl
def setup(run: RunContext, stage: Stage) -> None:
    """Evaluate every validation/test sample exactly once across ranks (no padding)."""
    if run.backend.world_size > 1:
        from runner_ddp import sharding

        sharding.unpad_eval_loaders(run)


@hookimpl
def get_state(run: RunContext) -> dict[str, Any] | None:
    """The train loader's global sample position, so any world size can resume it."""
    from runner_ddp import sharding

    position = sharding.position(run)
    return {sharding.STATE_KEY: position} if position is not None else None


@hookimpl
def update_state(run: RunContext, state: dict[str, Any]) -> None:
    """Continue the checkpoint's epoch from its global sample position."""
    from runner_ddp import sharding

    sharding.resume(run, state.get(sharding.STATE_KEY))
