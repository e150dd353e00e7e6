"""Entry module of the ``runner-collates`` plugin (torch-free: factories are lazy references)."""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_collates.params import DefaultParams, PadParams, StackDictParams


@hookimpl
def register_collates(register: RegisterComponent) -> None:
    """Register ``default``, ``pad`` and ``stack_dict`` (helios ``COLLATE_FN_REGISTRY``)."""
    register("default", "runner_collates.collates:DefaultCollate", params=DefaultParams, doc=DefaultParams.__doc__)
    register("pad", "runner_collates.collates:PadCollate", params=PadParams, doc=PadParams.__doc__)
    register("stack_dict", "runner_collates.collates:StackDict", params=StackDictParams, doc=StackDictParams.__doc__)
