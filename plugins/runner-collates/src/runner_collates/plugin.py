"""Entry module of the ``runner-collates`` plugin (torch-free: factories are lazy references)."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_collates(register: RegisterComponent) -> None:
    """Register ``default``, ``pad`` and ``stack_dict`` (helios ``COLLATE_FN_REGISTRY``)."""
    register("default", "runner_collates.collates:DefaultCollate", params="runner_collates.params:DefaultParams")
    register("pad", "runner_collates.collates:PadCollate", params="runner_collates.params:PadParams")
    register("stack_dict", "runner_collates.collates:StackDict", params="runner_collates.params:StackDictParams")
