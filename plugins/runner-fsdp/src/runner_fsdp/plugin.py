"""Entry module of the ``runner-fsdp`` plugin: the ``fsdp`` backend.

Imports only torch-free modules; the backend is a lazy reference. The backend subclasses
runner-ddp's, so runner-ddp's plugin keeps the train loader's global sample position in
the checkpoint (owner ``ddp``) for fsdp runs as well: it must be enabled too.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``fsdp``."""
    register("fsdp", "runner_fsdp.params:FSDPParams")
