"""The ``ray`` executor: each shard of a ``[[process]]`` step is one Ray task.

Tasks return the processor's output to the driver, which writes it into the step's
content-addressed cache exactly as the local executors do (same keys, same bytes), so
an output computed on Ray is reused by a local run and the other way round. Inputs are
file paths: on a multi-node cluster they must be readable at the same path on every node
(shared storage), as for any Ray task that reads files.

A processor defined in a local plugin file (``-p file.py``, recipe ``plugins = [...]``),
which Ray's workers could not import, is shipped by value.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from runner import Cache, Shard, process_shard
from runner_ray.cluster import ray_session
from runner_ray.params import RayExecutorParams


class RayExecutor:
    """Runs shards as Ray tasks (see the module documentation)."""

    def __init__(self, params: RayExecutorParams) -> None:
        self.params = params

    def run(self, processor: Any, shards: Sequence[Shard], cache: Cache, workers: int) -> None:
        """Process ``shards`` on Ray; ``workers`` is not used (Ray schedules by ``cpus_per_task``)."""
        p = self.params
        with ray_session(p.address, p.local_cpus, "[[process]] executor 'ray'", p.connect_timeout_s) as ray:
            ship_by_value(type(processor).__module__)
            task = ray.remote(num_cpus=p.cpus_per_task, max_retries=p.max_retries)(process_shard)
            processor_ref = ray.put(processor)
            queue = list(shards)
            limit = p.max_in_flight or len(queue)
            pending: dict[Any, Shard] = {}
            try:
                while queue or pending:
                    while queue and len(pending) < limit:
                        shard = queue.pop(0)
                        pending[task.remote(processor_ref, shard)] = shard
                    done, _ = ray.wait(list(pending), num_returns=1)
                    shard = pending.pop(done[0])
                    cache.write_shard(shard.key, _result(ray, done[0]))
            finally:
                for ref in pending:
                    ray.cancel(ref, force=True)


def _result(ray: Any, ref: Any) -> Mapping[str, Any]:
    """The task's output; a processor's exception is raised again as itself."""
    try:
        data: Mapping[str, Any] = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            remote = str(exc)  # Ray's text: the task, its node and process, the remote traceback
            if remote and hasattr(cause, "add_note"):  # shown with --debug: where it failed, on which node
                cause.add_note(f"raised in a Ray task:\n{remote}")
            raise cause from None
        raise
    return data


def ship_by_value(module_name: str) -> None:
    """Let Ray pickle classes of ``module_name`` by value when workers cannot import it
    (a plugin loaded from a file path rather than an installed distribution)."""
    module = sys.modules.get(module_name)
    if module is None or module_name == "__main__":
        return
    # Not find_spec(module_name): it answers from sys.modules. Ask the path finder whether
    # a fresh interpreter would find the top-level package (a `-p file.py` plugin is
    # loaded under a made-up name that no path holds).
    top = module_name.partition(".")[0]
    if importlib.machinery.PathFinder.find_spec(top) is None:
        from ray import cloudpickle  # Ray's own copy, the serializer of task arguments

        cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
