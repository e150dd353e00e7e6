"""Entry module of the ``runner-ray`` plugin: the ``ray`` executor, backend and sweeper.

Torch- and Ray-free: each is a lazy ``module:attr`` reference to its declaration in
:mod:`runner_ray.params` or :mod:`runner_ray.tune_params`.
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


@hookimpl
def register_sweepers(register: RegisterComponent) -> None:
    """Register ``ray``: Ray Tune trials with ASHA early stopping, on a local Ray instance."""
    register("ray", "runner_ray.tune_params:RayTune")
