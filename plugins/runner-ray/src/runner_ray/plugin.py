"""Entry module of the ``runner-ray`` plugin: the ``ray`` executor and the ``ray`` backend.

Torch- and Ray-free: both are lazy ``module:attr`` references to their declarations in
:mod:`runner_ray.params`.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_executors(register: RegisterComponent) -> None:
    """Register ``ray``: each shard of a ``[[process]]`` step becomes a Ray task."""
    register("ray", "runner_ray.params:RayExecutorParams")


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``ray``: data-parallel training on Ray Train's TorchTrainer."""
    register("ray", "runner_ray.params:RayBackendParams")
