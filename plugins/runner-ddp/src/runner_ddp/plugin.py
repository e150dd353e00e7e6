"""Entry module of the ``runner-ddp`` plugin: the ``ddp`` backend.

Imports only torch-free modules; the backend is a lazy reference to its declaration
(:class:`runner_ddp.params.DDPParams`). The hooks that keep sample accounting exact across
ranks (evaluation shards, resume on another world size) are methods of the backend
object, so they fire only in runs that chose ``ddp``.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``ddp``."""
    register("ddp", "runner_ddp.params:DDPParams")
