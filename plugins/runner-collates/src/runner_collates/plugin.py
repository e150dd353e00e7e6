"""Entry module of the ``runner-collates`` plugin (torch-free: components are lazy references)."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_collates(register: RegisterComponent) -> None:
    """Register ``default``, ``pad`` and ``stack_dict`` (helios ``COLLATE_FN_REGISTRY``)."""
    register("default", "runner_collates.components:Default")
    register("pad", "runner_collates.components:Pad")
    register("stack_dict", "runner_collates.components:StackDict")
