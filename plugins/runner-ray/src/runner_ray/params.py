"""The ``ray`` executor and backend, each declared once (torch- and Ray-free, read at validation).

Each declaration is also its object's configuration: ``build`` hands it, validated, to
:class:`runner_ray.executor.RayExecutor` or :class:`runner_ray.backend.RayBackend`, which
read it as ``params``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from runner import at_least, component, param

if TYPE_CHECKING:
    from runner_ray.backend import RayBackend
    from runner_ray.executor import RayExecutor

ADDRESS_DOC = (
    'Ray cluster: "" uses $RAY_ADDRESS when set, else starts a local Ray instance for the run and '
    'stops it afterwards; "auto" joins the cluster this machine belongs to; "HOST:PORT" or '
    '"ray://HOST:PORT" a remote one.'
)

CONNECT_TIMEOUT_DOC = (
    "Seconds to wait for the cluster at address / $RAY_ADDRESS to answer before the run stops with "
    '"cannot connect to the Ray cluster" (not used for a local instance).'
)


def _address(value: Any) -> str | None:
    text = str(value)
    if text in ("", "auto", "local") or re.fullmatch(r"(ray://)?(\[[0-9a-fA-F:]+\]|[\w.-]+)(:\d{1,5})?", text):
        return None
    return f'must be "", "auto", "local", "HOST:PORT" or "ray://HOST:PORT", found {value!r}'


def _positive(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and value > 0 else f"must be greater than 0, found {value!r}"


#: Resources with their own parameters (or none: TPUs are not supported).
RESERVED_RESOURCES = {"CPU": "cpus_per_worker", "GPU": "gpus_per_worker", "TPU": "(not supported)"}


def _resources(value: Any) -> str | None:
    if not (isinstance(value, dict) and all(isinstance(v, (int, float)) and v >= 0 for v in value.values())):
        return f"must be a table of resource name = amount (at least 0), found {value!r}"
    reserved = [f"{key} (use {RESERVED_RESOURCES[key]})" for key in value if key in RESERVED_RESOURCES]
    if reserved:
        return f"must not name {', '.join(reserved)}"
    return None


@component
class RayExecutorParams:
    """Each shard a Ray task on a local or remote Ray cluster; outputs land in the usual cache.

    ``executor = { name = "ray", ... }`` of a ``[[process]]`` step: every shard that is
    not cached yet becomes one Ray task; the driver (``runner process`` / ``runner run``)
    writes the returned outputs into the usual content-addressed cache.
    """

    address: str = param("", doc=ADDRESS_DOC, check=_address)
    cpus_per_task: float = param(1.0, doc="CPUs Ray reserves for each shard's task.", check=_positive)
    max_retries: int = param(
        3,
        doc="Times Ray reruns a shard's task whose worker process died (not when process() raised).",
        check=at_least(0),
    )
    max_in_flight: int = param(
        0, doc="Shards submitted at once (bounds the driver's memory); 0: all of them.", check=at_least(0)
    )
    local_cpus: int | None = param(
        None, doc="CPUs of a local Ray instance started for the step (default: every core).", check=at_least(1)
    )
    connect_timeout_s: float = param(30.0, doc=CONNECT_TIMEOUT_DOC, check=_positive)

    def build(self) -> RayExecutor:
        from runner_ray.executor import RayExecutor

        return RayExecutor(self)


@component
class RayBackendParams:
    """DistributedDataParallel in Ray Train workers (TorchTrainer), on a local or remote Ray cluster.

    ``[run] backend = "ray"``: ``num_workers`` Ray Train workers (a ``TorchTrainer``), each
    a DistributedDataParallel rank with the same semantics as the ``ddp`` backend.
    """

    num_workers: int = param(2, doc="Training workers (ranks) in the Ray cluster.", check=at_least(1))
    cpus_per_worker: float = param(1.0, doc="CPUs Ray reserves for each worker.", check=_positive)
    gpus_per_worker: float = param(1.0, doc="GPUs Ray reserves for each worker when training on CUDA.", check=_positive)
    resources_per_worker: dict[str, float] = param(
        {}, doc="Other Ray resources each worker needs (e.g. { memory = 4e9 }).", check=_resources
    )
    address: str = param("", doc=ADDRESS_DOC, check=_address)
    connect_timeout_s: float = param(30.0, doc=CONNECT_TIMEOUT_DOC, check=_positive)
    local_cpus: int | None = param(
        None,
        doc="CPUs of a local Ray instance started for the run (default: every core, at least num_workers x "
        "cpus_per_worker).",
        check=at_least(1),
    )
    max_restarts: int = param(
        0,
        doc="Restart the worker group this many times after a failure (Ray Train's max_failures); with a "
        "[checkpoint] table the workers resume from the newest checkpoint.",
        check=at_least(0),
    )
    timeout_s: float = param(
        600.0, doc="Seconds a rank waits for the others (process group set-up, collectives).", check=at_least(1)
    )
    process_group: Literal["auto", "gloo", "nccl"] = param(
        "auto", doc='torch.distributed backend; "auto": NCCL when training on CUDA, gloo on CPU.'
    )
    find_unused_parameters: bool = param(
        False, doc="Let DistributedDataParallel handle parameters that get no gradient in a step (slower)."
    )
    bucket_cap_mb: float = param(25.0, doc="Gradient bucket size (MiB) of the all-reduce.", check=at_least(1))
    storage_path: str = param(
        "",
        doc="Where Ray Train keeps its own run state (a path every node can reach on a multi-node cluster); "
        '"": a temporary directory, removed when the run ends.',
    )

    def build(self) -> RayBackend:
        from runner_ray.backend import RayBackend

        return RayBackend(self)
