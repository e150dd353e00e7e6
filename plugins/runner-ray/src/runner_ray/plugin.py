"""Entry module of the ``runner-ray`` plugin: the ``ray`` executor and the ``ray`` backend.

Torch- and Ray-free: factories and parameter classes are lazy ``module:attr`` references.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_executors(register: RegisterComponent) -> None:
    """Register ``ray``: each shard of a ``[[process]]`` step becomes a Ray task."""
    register(
        "ray",
        "runner_ray.executor:RayExecutor",
        params="runner_ray.params:RayExecutorParams",
        doc="Each shard a Ray task on a local or remote Ray cluster; outputs land in the usual cache.",
    )


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    """Register ``ray``: data-parallel training on Ray Train's TorchTrainer."""
    register(
        "ray",
        "runner_ray.backend:build",
        params="runner_ray.params:RayBackendParams",
        doc="DistributedDataParallel in Ray Train workers (TorchTrainer), on a local or remote Ray cluster.",
    )
