"""The ``ray`` backend: data-parallel training in Ray Train workers.

:meth:`RayBackend.launch` runs in the ``runner run`` process (the Ray *driver*): it joins
or starts a Ray cluster and fits a ``TorchTrainer`` with ``num_workers`` workers. Ray
Train places the workers, sets up the torch.distributed process group between them
(gloo, or NCCL on GPUs) and restarts the whole group after a failure
(``max_restarts``). Each worker then trains as a :class:`RayRank`, which is the ``ddp``
backend's rank (``runner_ddp``) with the process group Ray made: the same
DistributedDataParallel wrapping, sample sharding, all-reduced metrics, rank-0 logs and
checkpoints, and resume from the newest checkpoint after a restart.

Rank 0's result reaches the driver through a small Ray actor (:class:`Mailbox`), which
also counts each rank's attempts so a restarted group knows to resume. The run directory
must be on storage every node can reach when the cluster has more than one node (rank 0
writes it, every rank reads checkpoints from it).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

import attrs
import torch
import torch.distributed as dist

from runner.engine.job import Job
from runner.errors import RunnerError
from runner_ddp.backend import DDP, Stopped, keep_signal_handlers
from runner_ddp.env import RankEnv
from runner_ddp.params import DDPParams
from runner_ray.cluster import ray_session
from runner_ray.params import RayBackendParams

T = TypeVar("T")
WHAT = "[run] backend 'ray'"


def build(**params: Any) -> RayBackend:
    """Factory the registry calls with the recipe's ``[backend]`` parameters."""
    fields = attrs.fields_dict(RayBackendParams)
    return RayBackend(RayBackendParams(**{k: v for k, v in params.items() if k in fields}))


class RayBackend:
    """The driver's side of the ``ray`` backend (see the module documentation)."""

    rank = 0
    world_size = 1

    def __init__(self, params: RayBackendParams) -> None:
        self.params = params

    @property
    def is_primary(self) -> bool:
        """The driver runs ``[[process]]`` steps and ``prepare_data`` before the workers start."""
        return True

    def launch(self, worker: Callable[[Job, Any], T], job: Job) -> T:
        """Fit a TorchTrainer whose workers run ``worker(job, rank)``; rank 0's result."""
        p = self.params
        requested = job.recipe.run.device
        if requested == "mps":
            raise RunnerError("[run] device = 'mps' is not supported by the ray backend; use 'cpu' or 'cuda'")
        needed_cpus = int(max(1.0, p.num_workers * p.cpus_per_worker) + 0.999)
        local_cpus = p.local_cpus or max(os.cpu_count() or 1, needed_cpus)
        with ray_session(p.address, local_cpus, WHAT) as ray:
            use_gpu = self._use_gpu(ray, requested)
            group: Literal["gloo", "nccl"] = (
                p.process_group if p.process_group != "auto" else ("nccl" if use_gpu else "gloo")
            )
            if group == "nccl" and not use_gpu:
                raise RunnerError("[backend] process_group = 'nccl' needs GPU workers: [run] device = 'cuda' or 'auto'")
            return self._fit(ray, worker, job, use_gpu, group)

    def _use_gpu(self, ray: Any, requested: str) -> bool:
        p = self.params
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        if requested == "cpu":
            return False
        if requested.startswith("cuda"):
            if ":" in requested:
                raise RunnerError(
                    f"[run] device = {requested!r}: Ray assigns each worker its GPU; use 'cuda' or 'auto'"
                )
            if gpus < p.num_workers * p.gpus_per_worker:
                raise RunnerError(
                    f"[run] device = {requested!r} needs {p.num_workers * p.gpus_per_worker:g} GPUs "
                    f"(num_workers x gpus_per_worker) but the Ray cluster has {gpus:g}"
                )
            return True
        return gpus >= p.num_workers * p.gpus_per_worker > 0  # "auto"

    def _fit(
        self, ray: Any, worker: Callable[[Job, Any], T], job: Job, use_gpu: bool, group: Literal["gloo", "nccl"]
    ) -> T:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        p = self.params
        resources: dict[str, float] = {"CPU": p.cpus_per_worker, **p.resources_per_worker}
        if use_gpu:
            resources["GPU"] = p.gpus_per_worker
        mailbox = ray.remote(num_cpus=0)(Mailbox).remote()
        storage = p.storage_path or tempfile.mkdtemp(prefix="runner-ray-")
        ddp_params = DDPParams(
            mode="join",
            process_group=group,
            timeout_s=p.timeout_s,
            find_unused_parameters=p.find_unused_parameters,
            bucket_cap_mb=p.bucket_cap_mb,
            max_restarts=p.max_restarts,
        )
        trainer = _trainer_class(TorchTrainer)(
            worker_main,
            train_loop_config={
                "worker": worker,
                "payload": pickle.dumps(job),
                "params": ddp_params,
                "mailbox": mailbox,
            },
            torch_config=TorchConfig(backend=group, timeout_s=int(p.timeout_s)),
            scaling_config=ScalingConfig(num_workers=p.num_workers, use_gpu=use_gpu, resources_per_worker=resources),
            run_config=RunConfig(
                name=f"runner-{job.recipe.run.name}",
                storage_path=storage,
                failure_config=FailureConfig(max_failures=p.max_restarts),
            ),
        )
        try:
            with keep_signal_handlers(), stop_on_sigterm():
                trainer.fit()
        except Stopped:
            raise
        except Exception as exc:
            if getattr(trainer, "interrupted", False):  # the abort ends the controller actor
                raise Stopped(signal.SIGINT) from None
            raise worker_failure(exc) from None
        finally:
            if not p.storage_path:
                shutil.rmtree(storage, ignore_errors=True)
        if getattr(trainer, "interrupted", False):
            raise Stopped(signal.SIGINT)
        found, result = ray.get(mailbox.result.remote())
        if not found:
            raise RunnerError("the ray backend's workers ended without a result from rank 0")
        return pickle.loads(result)  # type: ignore[no-any-return]

    # The Backend protocol as seen from the driver, which never trains: each worker uses
    # its RayRank instead.

    def device(self, requested: str) -> torch.device:
        return torch.device("cpu")

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def barrier(self) -> None:
        return None


def _trainer_class(base: type) -> type:
    """``base`` (TorchTrainer) with runner's Ctrl-C: the first asks Ray Train to abort the
    workers and the run ends with a resume hint (exit 130); a second stops at once. (Ray's
    own handler exits the driver with status 1 and no message, and stays installed.)"""

    class Trainer(base):  # type: ignore[misc]
        interrupted = False

        def _register_sigint_handler(self, controller: Any) -> None:
            def on_sigint(signum: int, frame: Any) -> None:
                if self.interrupted:
                    raise KeyboardInterrupt
                self.interrupted = True
                print("\nstopping the Ray workers (Ctrl-C again stops at once)", file=sys.stderr, flush=True)
                controller.abort.remote()

            signal.signal(signal.SIGINT, on_sigint)

    return Trainer


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM to the driver unwinds it (so a local Ray instance is shut down, not orphaned)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received: list[int] = []

    def on_sigterm(signum: int, frame: Any) -> None:
        # KeyboardInterrupt is the exception a blocking ray.get() lets through.
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except KeyboardInterrupt:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


class Mailbox:
    """A Ray actor the workers report to: each rank's attempt number, and rank 0's result."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.payload: bytes | None = None

    def attempt(self, rank: int) -> int:
        """How many times ``rank`` started before (0 on the first attempt)."""
        self.attempts[rank] = self.attempts.get(rank, -1) + 1
        return self.attempts[rank]

    def set_result(self, payload: bytes) -> None:
        self.payload = payload

    def result(self) -> tuple[bool, bytes]:
        return self.payload is not None, self.payload or b""


class RayRank(DDP):
    """One Ray Train worker as a ``ddp`` rank, in the process group Ray Train set up."""

    def rank_device(self, requested: str) -> torch.device:
        if self._device is None:
            from ray.train.torch import get_device

            device = get_device() if requested != "cpu" else torch.device("cpu")
            self._device = device if isinstance(device, torch.device) else torch.device(device)
        return self._device

    def _init_group(self, group: str, device: torch.device) -> None:
        if dist.is_initialized():  # Ray Train made it (and destroys it)
            return
        super()._init_group(group, device)


def worker_main(config: dict[str, Any]) -> None:
    """The ``train_loop_per_worker`` of the TorchTrainer (module level, so it pickles)."""
    from ray import train

    context = train.get_context()
    rank = context.get_world_rank()
    attempt = int(_ray().get(config["mailbox"].attempt.remote(rank)))
    env = RankEnv(
        rank=rank,
        world_size=context.get_world_size(),
        local_rank=context.get_local_rank(),
        local_world_size=context.get_local_world_size(),
        master_addr=os.environ.get("MASTER_ADDR", "127.0.0.1"),
        master_port=int(os.environ.get("MASTER_PORT", "29500")),
        restart_count=attempt,
        source="ray",
    )
    # As under torchrun: code that checks torch elastic's restart count sees the attempt.
    os.environ["TORCHELASTIC_RESTART_COUNT"] = str(attempt)
    try:
        job: Job = pickle.loads(config["payload"])
        backend = RayRank(config["params"], environ=env.exports())
        result = backend.run_rank(config["worker"], job, env)
    except RunnerError as exc:
        # Ray re-raises the worker's exception in the driver; keep ours one line long.
        raise RankError(rank, str(exc)) from None
    if rank == 0:
        _ray().get(config["mailbox"].set_result.remote(pickle.dumps(result)))


def _ray() -> Any:
    import ray

    return ray


class RankError(RunnerError):
    """A user-facing error raised on one rank."""

    def __init__(self, rank: int, message: str) -> None:
        super().__init__(message)
        self.rank = rank
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return RankError, (self.rank, self.message)


def worker_failure(exc: BaseException) -> RunnerError:
    """One line for a failed ``fit()``: which rank failed and why."""
    failures = getattr(exc, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        rank = min(failures)
        cause = failures[rank]
        if isinstance(cause, RankError):
            return RunnerError(f"rank {rank}: {cause.message}")
        text = str(cause).strip().splitlines()
        detail = f"{type(cause).__name__}: {text[-1]}" if text else type(cause).__name__
        others = sorted(r for r in failures if r != rank)
        also = f" (rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} failed too)" if others else ""
        return RunnerError(f"rank {rank} failed: {detail}{also}")
    if isinstance(exc, RunnerError):
        return exc
    text = str(exc).strip().splitlines()
    return RunnerError(f"ray training failed: {type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))
