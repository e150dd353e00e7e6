"""The ``ddp`` backend: DistributedDataParallel over torch.distributed.

One :class:`DDP` object plays two parts. Built by ``runner run`` outside any launcher,
it is the *launcher*: :meth:`DDP.launch` starts ``nproc_per_node`` workers through
torch's elastic agent (``torch.distributed.launcher.api.elastic_launch``, the engine of
``torchrun``), which handles the rendezvous between nodes, restarts and failures. Inside
each worker, or in a process that torchrun, ``srun`` or another launcher started, it is
the *rank*: it joins the process group from the standard environment variables and
calls the engine's worker with itself as that rank's backend.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import json
import logging
import multiprocessing
import multiprocessing.util
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar, cast

import attrs
import torch
import torch.distributed as dist

from runner import Job, Recipe, RunContext, RunnerError, Stage
from runner_ddp import failures, forkserver
from runner_ddp.env import RankEnv, from_environ, has_launcher
from runner_ddp.janitor import Janitor
from runner_ddp.lifeline import Launcher, Lifeline
from runner_ddp.params import CPU_AUTO_NPROC, DDPParams, LaunchParams, node_range
from runner_ddp.stopping import SignalCounter, StopForwarder, agent_signals
from runner_ddp.watch import HangWatch

T = TypeVar("T")

#: Seconds the agent waits for workers to exit after SIGTERM before it sends SIGKILL.
SHUTDOWN_TIMEOUT_S = 15
#: How often the agent checks on its workers.
MONITOR_INTERVAL_S = 0.1
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})


@attrs.frozen
class Plan:
    """How the launcher starts the workers of this node."""

    nproc: int
    device_type: str
    process_group: str
    start_method: str


class DDP:
    """DistributedDataParallel on torch.distributed; ``rank`` 0 is the primary.

    Other torch.distributed backends reuse its launcher, rank setup, failure attribution,
    sample sharding and reductions by subclassing it (runner-fsdp's ``FSDP`` overrides
    :meth:`wrap_model`); ``params`` is then their declaration, a :class:`LaunchParams`
    subclass whose ``build`` makes the backend again in every launched worker.
    """

    def __init__(self, params: LaunchParams, environ: Mapping[str, str] | None = None) -> None:
        self.params = params
        environ = os.environ if environ is None else environ
        if params.process_group == "nccl" and not torch.cuda.is_available():
            raise RunnerError(
                "[backend] process_group = 'nccl' needs CUDA GPUs, but CUDA is not available here; "
                "use 'gloo' (or 'auto') to train on CPU"
            )
        joining = params.mode == "join" or (params.mode == "auto" and has_launcher(environ))
        self.env: RankEnv | None = from_environ(environ, params.rdzv_endpoint) if joining else None
        if self.env is not None:
            self.rank, self.world_size, self.local_rank = self.env.rank, self.env.world_size, self.env.local_rank
        else:  # the launcher's view until the workers run: node 0 is where the primary lives
            self.rank, self.world_size, self.local_rank = params.node_rank, node_range(params.nnodes)[0], 0
        self._device: torch.device | None = None
        self._group_started = False

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

    # -- launching -------------------------------------------------------------------

    def launch(self, worker: Callable[[Job, DDP], T], job: Job) -> T:
        """Join the launcher's processes, or start this node's workers and wait for them."""
        if self.env is not None:
            if "TORCHELASTIC_RUN_ID" in os.environ:  # started by torchrun's agent: die with it
                Lifeline(Launcher.parent()).start()
            return self.run_rank(worker, job, self.env)
        return self._launch(worker, job)

    def plan(self, recipe: Recipe) -> Plan:
        """Processes, device, process group and start method for ``recipe`` on this node."""
        p, requested = self.params, recipe.run.device
        if requested == "mps":
            raise RunnerError("[run] device = 'mps' is not supported by the ddp backend; use 'cpu' or 'cuda'")
        if p.process_group == "nccl" and requested == "cpu":
            raise RunnerError("[backend] process_group = 'nccl' needs [run] device = 'cuda' or 'auto', not 'cpu'")
        if requested == "cpu":
            cuda = False
        elif requested.startswith("cuda") or p.process_group == "nccl":
            if not torch.cuda.is_available():
                raise RunnerError(f"[run] device = {requested!r} but CUDA is not available; use 'auto' or 'cpu'")
            cuda = True
        else:
            cuda = torch.cuda.is_available()
        gpus = torch.cuda.device_count() if cuda else 0
        nproc = (gpus if cuda else CPU_AUTO_NPROC) if p.nproc_per_node == "auto" else int(p.nproc_per_node)
        if cuda and ":" in requested:
            index = int(requested.partition(":")[2])
            if nproc > 1:
                raise RunnerError(
                    f"[run] device = {requested!r} would put all {nproc} processes on one GPU; use 'cuda' or 'auto' "
                    "(each process trains on the GPU of its local rank)"
                )
            if index >= gpus:
                raise RunnerError(f"[run] device = {requested!r} but only {gpus} GPUs are visible")
        elif cuda and nproc > gpus:
            raise RunnerError(
                f"[backend] nproc_per_node = {nproc} but only {gpus} GPU{'s' if gpus != 1 else ''} "
                f"{'are' if gpus != 1 else 'is'} visible (one process per GPU); "
                'use nproc_per_node = "auto" or at most the number of GPUs'
            )
        group = p.process_group if p.process_group != "auto" else ("nccl" if cuda else "gloo")
        start = p.start_method
        if start == "auto":
            start = "forkserver" if not cuda and sys.platform.startswith("linux") else "spawn"
        return Plan(nproc=nproc, device_type="cuda" if cuda else "cpu", process_group=group, start_method=start)

    def _endpoint(self, recipe: Recipe) -> tuple[str, str]:
        """``(endpoint, run_id)`` of the rendezvous; checks that a port this node hosts is free."""
        p = self.params
        max_nodes = node_range(p.nnodes)[1]
        if not p.rdzv_endpoint:
            if max_nodes > 1:
                raise RunnerError(
                    f"[backend] nnodes = {p.nnodes!r} needs rdzv_endpoint = 'HOST:PORT' (a free port on node 0), "
                    "the same on every node"
                )
            if p.rdzv_backend == "static":
                return f"127.0.0.1:{free_port()}", uuid.uuid4().hex
            return "localhost:0", uuid.uuid4().hex  # the store picks a free port
        host, _, port = p.rdzv_endpoint.rpartition(":")
        if not host:
            host, port = p.rdzv_endpoint, ""
        host = host.strip("[]")
        # Node 0 hosts the rendezvous store (c10d: the first agent on the endpoint's machine).
        hosts_here = p.node_rank == 0 and (p.rdzv_backend == "static" or is_this_machine(host))
        if port and hosts_here and port_in_use(int(port)):
            raise RunnerError(
                f"[backend] rdzv_endpoint = {p.rdzv_endpoint!r}: port {port} is already in use on this machine; "
                "choose a free port (the same on every node), or leave rdzv_endpoint empty on a single node"
            )
        run_id = p.rdzv_id or f"runner-{recipe.run.name}"
        return p.rdzv_endpoint, run_id

    def _launch(self, worker: Callable[[Job, DDP], T], job: Job) -> T:
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
        from torch.distributed.elastic.multiprocessing.api import SignalException
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.elastic.rendezvous.api import RendezvousError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        p = self.params
        plan = self.plan(job.recipe)
        endpoint, run_id = self._endpoint(job.recipe)
        min_nodes, max_nodes = node_range(p.nnodes)
        timeout = int(p.timeout_s)
        rdzv_configs: dict[str, Any] = {"timeout": timeout, "join_timeout": timeout}
        if p.rdzv_backend == "static":
            rdzv_configs["rank"] = p.node_rank
        payload = pickle.dumps(job)
        reports = tempfile.mkdtemp(prefix="runner-ddp-")
        config = LaunchConfig(
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            nproc_per_node=plan.nproc,
            run_id=run_id,
            rdzv_endpoint=endpoint,
            rdzv_backend=p.rdzv_backend,
            rdzv_configs=rdzv_configs,
            max_restarts=p.max_restarts,
            monitor_interval=MONITOR_INTERVAL_S,
            start_method=plan.start_method,
            logs_specs=DefaultLogsSpecs(log_dir=os.path.join(reports, "logs")),
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            **agent_signals(LaunchConfig),
        )
        # DistributedDataParallel imports torch._dynamo when built (seconds): import it once
        # where the workers fork from, not in every worker of every attempt (with the
        # engine's worker function's module).
        if plan.start_method == "forkserver":
            preload = ["runner_ddp.forkserver", "torch", "torch._dynamo", worker.__module__, __name__]
            preload += [type(self).__module__] if type(self).__module__ != __name__ else []
            multiprocessing.set_forkserver_preload(preload)
        elif plan.start_method == "fork":
            importlib.import_module("torch._dynamo")
        if max_nodes > 1:
            print(
                f"ddp: node {p.node_rank} ({plan.nproc} processes) waiting for {p.nnodes} nodes at {endpoint} "
                f"(rdzv_id {run_id!r}, up to {p.timeout_s:g} s)",
                file=sys.stderr,
            )
        sys.stdout.flush()
        sys.stderr.flush()
        launcher = Launcher.this_process()
        # The fork server's socket lives in multiprocessing's temporary directory: the
        # janitor removes it with the reports if this process is killed.
        janitor = Janitor([reports, multiprocessing.util.get_temp_dir()])
        stops = StopForwarder(reports)
        watch = HangWatch(reports, p.timeout_s)
        try:
            with (
                quiet_elastic_logs(),
                keep_signal_handlers(),
                stops,
                watch,
                launcher_env(launcher),
                temporary_files_in(multiprocessing.util.get_temp_dir()),
            ):
                results = elastic_launch(config, worker_main)(worker, payload, p, reports, launcher)
        except ChildFailedError as exc:
            if stops.signal is not None and not watch.hung:
                raise Stopped(stops.signal) from None
            attempt = failures.read_attempt(reports)
            raise failures.root_cause(attempt, failures.exits_of(exc.failures), watch.hung) from None
        except SignalException as exc:
            raise Stopped(exc.sigval) from None
        except RendezvousError as exc:
            raise RunnerError(
                f"rendezvous at {endpoint} (id {run_id!r}) failed: {type(exc).__name__}: {exc}; "
                f"start every node with the same rdzv_endpoint and rdzv_id, within timeout_s = {p.timeout_s:g} s"
            ) from None
        finally:
            shutil.rmtree(reports, ignore_errors=True)
            janitor.close()
        result: T = results[min(results)]
        return result

    # -- one rank ----------------------------------------------------------------------

    def run_rank(self, worker: Callable[[Job, DDP], T], job: Job, env: RankEnv) -> T:
        """Join the process group as ``env`` says, check every rank runs the same job, run ``worker``."""
        self.env = env
        self.rank, self.world_size, self.local_rank = env.rank, env.world_size, env.local_rank
        job.restart = max(job.restart, env.restart_count)
        device = self.rank_device(job.recipe.run.device)
        group = self.params.process_group
        if group == "auto":
            group = "nccl" if device.type == "cuda" else "gloo"
        if group == "nccl" and device.type != "cuda":
            raise RunnerError("[backend] process_group = 'nccl' needs [run] device = 'cuda' or 'auto', not 'cpu'")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        elif "OMP_NUM_THREADS" not in os.environ:  # share the cores between this node's ranks
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(env.local_world_size, 1)))
        for name, value in env.exports().items():
            os.environ.setdefault(name, value)
        self._init_group(group, device)
        try:
            self._check_same_job(job)
            return worker(job, self)
        finally:
            self._destroy_group()

    def rank_device(self, requested: str) -> torch.device:
        """This rank's device for ``[run] device``: GPUs are picked by local rank."""
        if self._device is not None:
            return self._device
        local_rank = self.local_rank
        local_world = self.env.local_world_size if self.env is not None else 1
        if requested == "mps":
            raise RunnerError("[run] device = 'mps' is not supported by the ddp backend; use 'cpu' or 'cuda'")
        if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
            device = torch.device("cpu")
        elif not torch.cuda.is_available():
            raise RunnerError(f"[run] device = {requested!r} but CUDA is not available; use 'auto' or 'cpu'")
        elif ":" in requested:
            if local_world > 1:
                raise RunnerError(
                    f"[run] device = {requested!r} would put all {local_world} processes of this node on one GPU; "
                    "use 'cuda' or 'auto' (each process trains on the GPU of its local rank)"
                )
            device = torch.device(requested)
        else:
            device = torch.device("cuda", local_rank)
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise RunnerError(
                f"local rank {local_rank} has no GPU: only {torch.cuda.device_count()} are visible on this node; "
                "start at most one process per GPU"
            )
        self._device = device
        return device

    def _init_group(self, group: str, device: torch.device) -> None:
        env = self.env
        assert env is not None
        timeout = timedelta(seconds=self.params.timeout_s)
        try:
            store: Any = None
            if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True):
                # The elastic agent's store lives across restarts: keep each attempt's
                # keys apart, or restarted ranks read the dead ranks' addresses.
                agent_store = dist.TCPStore(  # type: ignore[attr-defined]
                    env.master_addr, env.master_port, env.world_size, is_master=False, timeout=timeout
                )
                store = dist.PrefixStore(f"runner-ddp/attempt-{env.restart_count}", agent_store)  # type: ignore[attr-defined]
            dist.init_process_group(
                backend=group,
                init_method=None if store is not None else "env://",
                store=store,
                rank=env.rank,
                world_size=env.world_size,
                timeout=timeout,
                device_id=device if device.type == "cuda" else None,
            )
        except (RuntimeError, ValueError, TimeoutError) as exc:
            text = str(exc)
            where = f"{env.master_addr}:{env.master_port}"
            if "in use" in text.lower() or "EADDRINUSE" in text:
                raise RunnerError(
                    f"rank {env.rank} cannot start the process group: {where} is already in use; "
                    "choose another MASTER_PORT (or rdzv_endpoint port)"
                ) from None
            if "timed out" in text.lower() or "timeout" in text.lower():
                raise RunnerError(
                    f"rank {env.rank} timed out after {self.params.timeout_s:g} s waiting for the other "
                    f"{env.world_size - 1} ranks at {where}"
                ) from None
            raise
        self._group_started = True

    def _destroy_group(self) -> None:
        if self._group_started and dist.is_initialized():
            with contextlib.suppress(Exception):
                dist.destroy_process_group()
        self._group_started = False

    def _check_same_job(self, job: Job) -> None:
        """Fail on every rank when the ranks run different recipes or plugins (e.g. nodes out of sync)."""
        if self.world_size == 1:
            return
        plugins = sorted(f"{info.dist}=={info.version}" for info in job.plugin_infos())
        mine = torch.tensor(
            [_digest64(recipe_digest(job.recipe)), _digest64(json.dumps(plugins))],
            dtype=torch.int64,
            device=self._device,
        )
        gathered = [torch.empty_like(mine) for _ in range(self.world_size)]
        dist.all_gather(gathered, mine)
        values = [tuple(int(v) for v in t.tolist()) for t in gathered]
        for index, what in ((0, "recipe"), (1, "set of installed plugins and versions")):
            others = [rank for rank, v in enumerate(values) if v[index] != values[0][index]]
            if others:
                ranks = ", ".join(map(str, others))
                advice = (
                    "run the same recipe and -o overrides on every node (only [backend] node_rank may differ)"
                    if index == 0
                    else "install the same plugins and versions on every node"
                )
                raise RunnerError(
                    f"the {what} of rank{'s' if len(others) > 1 else ''} {ranks} differs from rank 0's; {advice}"
                )

    # -- the Backend protocol, from one rank ---------------------------------------------

    def device(self, requested: str) -> torch.device:
        return self.rank_device(requested)

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        params = cast(DDPParams, self.params)  # subclasses with other params override wrap_model
        device = self._device or torch.device("cpu")
        ids = [_index(device)] if device.type == "cuda" else None
        return DistributedDataParallel(
            model,
            device_ids=ids,
            find_unused_parameters=params.find_unused_parameters,
            bucket_cap_mb=params.bucket_cap_mb,
        )

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        device = self._device
        if device is not None and device.type == "cuda" and dist.get_backend() == "nccl":
            dist.barrier(device_ids=[_index(device)])
        else:
            dist.barrier()

    # -- run hooks: the backend is a run object, so these fire only in runs that chose ddp
    # (the train position is plugin state, see runner_ddp.plugin: other backends resume it)

    def setup(self, run: RunContext, stage: Stage) -> None:
        """Evaluate every validation/test sample exactly once across ranks (no padding)."""
        if self.world_size > 1:
            from runner_ddp import sharding

            sharding.unpad_eval_loaders(run)


class Stopped(RunnerError):
    """The launcher received a signal (Ctrl-C, SIGTERM) and stopped every worker."""

    def __init__(self, signum: int) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(f"stopped by {name}: every worker was stopped")
        self.exit_code = 128 + signum


def worker_main(
    worker: Callable[[Job, DDP], T], payload: bytes, params: LaunchParams, reports: str, launcher: Launcher
) -> T:
    """Entry point of a worker the elastic agent started (module level, so it pickles).

    The worker dies with ``launcher`` (:mod:`runner_ddp.lifeline`), beats a heartbeat and
    counts the stop signals it receives for the launcher (:mod:`runner_ddp.stopping`).
    """
    env = from_environ(os.environ)
    markers = failures.Markers(reports, env.rank, env.restart_count)
    markers.mark("started")
    Lifeline(launcher, markers).start()
    _mark_on_sigterm(markers)
    SignalCounter(markers)
    try:
        job: Job = pickle.loads(payload)
        # The declaration's own build: a backend subclassing DDP (fsdp) is that backend in its workers.
        backend = cast(Any, attrs.evolve(params, mode="join")).build()
        if not isinstance(backend, DDP):
            raise TypeError(f"{type(params).__name__}.build() returned {type(backend).__name__}, not a DDP backend")
        result = backend.run_rank(worker, job, env)
    except BaseException as exc:
        markers.report(exc)
        if not isinstance(exc, (RunnerError, KeyboardInterrupt, SystemExit)) and not failures.is_collateral(exc):
            text = "".join(traceback.format_exception(exc))
            print(f"rank {env.rank} failed:\n{text}", file=sys.stderr, end="", flush=True)
        raise
    markers.mark("done")
    return result


def _mark_on_sigterm(markers: failures.Markers) -> None:
    """When the agent stops this worker (SIGTERM), say so, then die of the signal as before."""

    def on_sigterm(signum: int, frame: Any) -> None:
        markers.mark("terminated")
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def recipe_digest(recipe: Recipe) -> str:
    """sha256 of the resolved recipe, leaving out what legitimately differs between nodes."""
    tree = copy.deepcopy(recipe.resolved)
    backend = tree.get("backend")
    if isinstance(backend, dict):
        backend.pop("node_rank", None)
    text = json.dumps(tree, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _digest64(text: str) -> int:
    digest = hashlib.sha256(text.encode("utf-8")).digest() if len(text) != 64 else bytes.fromhex(text)
    return int.from_bytes(digest[:8], "big", signed=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something on this machine already listens on (or holds) ``port``."""
    for family, address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 here
            continue
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, port))
            except OSError as exc:
                if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                    return True
    return False


def is_this_machine(host: str) -> bool:
    """Whether ``host`` names this machine (so this node hosts the rendezvous store)."""
    if host in LOCAL_HOSTS or host.startswith("127."):
        return True
    names = {socket.gethostname(), socket.getfqdn()}
    if host in names:
        return True
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        local = {str(info[4][0]) for name in names for info in socket.getaddrinfo(name, None)}
    except OSError:
        return False
    return bool(addresses & local) or any(a.startswith("127.") for a in addresses)


@contextlib.contextmanager
def quiet_elastic_logs() -> Iterator[None]:
    """Keep torch elastic's own warnings off the terminal (``LOGLEVEL=INFO`` shows everything)."""
    if "LOGLEVEL" in os.environ:
        yield
        return
    loggers = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing"))
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def launcher_env(launcher: Launcher) -> Iterator[None]:
    """Name this process as the launcher for the fork server it starts (see runner_ddp.forkserver)."""
    previous = os.environ.get(forkserver.LAUNCHER_ENV)
    os.environ[forkserver.LAUNCHER_ENV] = str(launcher.pid)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(forkserver.LAUNCHER_ENV, None)
        else:
            os.environ[forkserver.LAUNCHER_ENV] = previous


@contextlib.contextmanager
def keep_signal_handlers() -> Iterator[None]:
    """Restore the signal handlers a library replaces and never puts back (torch's elastic
    agent; runner-ray uses it around ``ray.init`` and Ray Train's ``fit``)."""
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    signals = [getattr(signal, name) for name in names if hasattr(signal, name)]
    main = threading.current_thread() is threading.main_thread()
    saved = {signum: signal.getsignal(signum) for signum in signals} if main else {}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def temporary_files_in(directory: str) -> Iterator[None]:
    """The launcher's temporary files in ``directory`` (one the janitor removes): torch
    names a ``pytorch-errorfile-*.pickle`` per worker in the default temporary directory,
    which a worker killed with its launcher writes and nothing would ever remove."""
    previous = tempfile.tempdir
    tempfile.tempdir = directory
    try:
        yield
    finally:
        tempfile.tempdir = previous
