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

import dataclasses
import math
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
import torch.distributed as dist

from runner import Job, RunnerError, SingleDevice
from runner_ddp.backend import DDP, Stopped, keep_signal_handlers
from runner_ddp.env import RankEnv
from runner_ddp.failures import is_collateral
from runner_ddp.params import DDPParams
from runner_ray.cluster import ray_session
from runner_ray.params import RayBackendParams

T = TypeVar("T")
WHAT = "[run] backend 'ray'"


class RayBackend(SingleDevice):
    """The driver's side of the ``ray`` backend (see the module documentation). Outside
    :meth:`launch` it is one process, like ``single`` (whose device, reduction and barrier
    it keeps): it is the primary that runs ``[[process]]`` steps and ``prepare_data``
    before the workers start, but never trains; each worker uses its :class:`RayRank`."""

    def __init__(self, params: RayBackendParams) -> None:
        self.params = params

    def launch(self, worker: Callable[[Job, Any], T], job: Job) -> T:
        """Fit a TorchTrainer whose workers run ``worker(job, rank)``; rank 0's result."""
        p = self.params
        requested = job.recipe.run.device
        if requested == "mps":
            raise RunnerError("[run] device = 'mps' is not supported by the ray backend; use 'cpu' or 'cuda'")
        needed_cpus = math.ceil(p.num_workers * p.cpus_per_worker)
        if p.local_cpus is not None and p.local_cpus < needed_cpus:
            raise RunnerError(
                f"[backend] local_cpus = {p.local_cpus} is fewer than the {needed_cpus} CPUs the workers need "
                f"(num_workers = {p.num_workers} x cpus_per_worker = {p.cpus_per_worker:g})"
            )
        local_cpus = p.local_cpus or max(os.cpu_count() or 1, needed_cpus)
        # Workers resolve relative paths (the default runs/<name>, data files, cache_dir)
        # against the driver's directory, so the run directory is made absolute here.
        job.run_dir = Path(job.run_dir).absolute()
        with ray_session(p.address, local_cpus, WHAT, p.connect_timeout_s) as ray:
            use_gpu = self._use_gpu(ray, requested)
            self._check_resources(ray, use_gpu)
            group: Literal["gloo", "nccl"] = (
                p.process_group if p.process_group != "auto" else ("nccl" if use_gpu else "gloo")
            )
            if group == "nccl" and not use_gpu:
                raise RunnerError("[backend] process_group = 'nccl' needs GPU workers: [run] device = 'cuda' or 'auto'")
            return self._fit(ray, worker, job, use_gpu, group)

    def _check_resources(self, ray: Any, use_gpu: bool) -> None:
        """Fail now, rather than wait forever, when the cluster cannot place the workers."""
        p = self.params
        per_worker = {"CPU": p.cpus_per_worker, **p.resources_per_worker}
        if use_gpu:
            per_worker["GPU"] = p.gpus_per_worker
        available = ray.cluster_resources()
        short = [
            f"{name} {p.num_workers * amount:g} (has {float(available.get(name, 0.0)):g})"
            for name, amount in per_worker.items()
            if amount > 0 and float(available.get(name, 0.0)) < p.num_workers * amount
        ]
        if short:
            raise RunnerError(
                f"the Ray cluster cannot place {p.num_workers} workers: they need {', '.join(short)}; "
                "lower num_workers or the per-worker resources, or add nodes (an autoscaling cluster must be "
                "scaled up first)"
            )

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
        ddp_params = DDPParams(
            mode="join",
            process_group=group,
            timeout_s=p.timeout_s,
            find_unused_parameters=p.find_unused_parameters,
            bucket_cap_mb=p.bucket_cap_mb,
            max_restarts=p.max_restarts,
        )
        # Workers run in the driver's directory, not Ray Train's per-run artifacts folder.
        os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
        storage = p.storage_path or tempfile.mkdtemp(prefix="runner-ray-")
        mailbox = ray.remote(num_cpus=0)(Mailbox).remote()
        trainer: Any = None
        try:
            trainer = _trainer_class(TorchTrainer)(
                worker_main,
                train_loop_config={
                    "worker": worker,
                    "payload": pickle.dumps(job),
                    "params": ddp_params,
                    "mailbox": mailbox,
                    "cwd": os.getcwd(),
                },
                torch_config=TorchConfig(backend=group, timeout_s=int(p.timeout_s)),
                scaling_config=ScalingConfig(
                    num_workers=p.num_workers, use_gpu=use_gpu, resources_per_worker=resources
                ),
                run_config=RunConfig(
                    name=f"runner-{job.recipe.run.name}",
                    storage_path=storage,
                    failure_config=failure_config(FailureConfig, p.max_restarts),
                ),
            )
            with keep_signal_handlers():  # TorchTrainer.fit installs its own SIGINT handler
                trainer.fit()
            found, result = ray.get(mailbox.result.remote())
        except Stopped:
            raise
        except Exception as exc:
            if getattr(trainer, "interrupted", False):  # the abort ends the controller actor
                raise Stopped(signal.SIGINT) from None
            raise worker_failure(exc) from None
        finally:
            ray.kill(mailbox)
            if not p.storage_path:
                shutil.rmtree(storage, ignore_errors=True)
        if getattr(trainer, "interrupted", False):
            raise Stopped(signal.SIGINT)
        if not found:
            raise RunnerError("the ray backend's workers ended without a result from rank 0")
        return pickle.loads(result)  # type: ignore[no-any-return]


def failure_config(cls: Any, max_restarts: int) -> Any:
    """Ray Train's FailureConfig: ``max_restarts`` bounds worker failures and node
    preemptions; a controller failure (e.g. workers that cannot be placed) is not retried
    forever. Options this Ray version lacks are left out."""
    options = {"max_failures": max_restarts, "max_preemption_failures": max_restarts, "controller_failure_limit": 0}
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in options.items() if name in known})


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
    if os.path.isdir(config["cwd"]):  # a node that shares the driver's file system
        os.chdir(config["cwd"])
    attempt = int(_ray().get(config["mailbox"].attempt.remote(rank)))
    if dist.is_initialized():  # a rank that died before counting its attempt must not disagree
        highest = torch.tensor([attempt], dtype=torch.int64)
        dist.all_reduce(highest, op=dist.ReduceOp.MAX)
        attempt = int(highest.item())
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


def _blame_order(cause: BaseException) -> int:
    """Which failure to name: runner errors first, then dead workers, then the rest, and
    last the collective errors other ranks saw because a peer went away."""
    if isinstance(cause, RankError):
        return 0
    if "ActorDied" in type(cause).__name__ or "ActorError" in type(cause).__name__:
        return 1
    return 3 if is_collateral(cause) else 2


def worker_failure(exc: BaseException) -> RunnerError:
    """One line for a failed ``fit()``: which rank failed and why."""
    failures = getattr(exc, "worker_failures", None)
    if isinstance(failures, dict) and failures:
        rank = min(failures, key=lambda r: (_blame_order(failures[r]), r))
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
