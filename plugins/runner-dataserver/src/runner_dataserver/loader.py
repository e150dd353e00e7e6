"""The ``async`` loader: servers build the dataset and collate batches; the sampler stays here.

The client owns a core :class:`runner.MapLoader` (built once the servers report
the dataset's length) for everything about order and state: ``set_epoch``, ``skip``,
``state_dict``/``load_state_dict`` and the start offset are the core's, so an epoch's
index batches, and a resumed epoch's, are exactly the standard loader's. Only fetching,
transforming and collating move to the servers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.connection import Client, wait
from typing import TYPE_CHECKING, Any

from runner import LoaderConfig, MapLoader, Registry, ResumableSampler, RunnerError, SplitConfig, can_seek
from runner_dataserver.server import ServerSpec, local_main, portable_registry

if TYPE_CHECKING:
    from runner_dataserver.params import AsyncLoaderParams


class DataServerError(RunnerError):
    """A data server failed (which one, and its exception) or could not be reached."""


class DatasetProxy:
    """What the training process sees of the remote dataset: its length and ``meta``
    (both wait for the servers to finish building it)."""

    def __init__(self, loader: AsyncLoader) -> None:
        self._loader = loader

    def __len__(self) -> int:
        return self._loader._info()[0]

    @property
    def meta(self) -> dict[str, Any]:
        return dict(self._loader._info()[1])


class _Server:
    """One server: a local process (``process``) or a remote address, and its connection."""

    def __init__(self, index: int, address: tuple[str, int] | None) -> None:
        self.index = index
        self.address = address
        self.process: Any = None
        self.conn: Any = None
        self.by_value = address is not None
        self.outstanding: dict[tuple[int, int], tuple[Any, ...]] = {}
        self.hello: tuple[Any, ...] | None = None

    def __str__(self) -> str:
        if self.address is not None:
            return f"data server {self.index} ({self.address[0]}:{self.address[1]})"
        pid = self.process.pid if self.process is not None else "?"
        return f"data server {self.index} (pid {pid})"

    def send(self, message: Any) -> None:
        if self.by_value:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        else:
            self.conn.send(message)

    def recv(self) -> Any:
        return pickle.loads(self.conn.recv_bytes()) if self.by_value else self.conn.recv()

    def stop(self) -> None:
        conn, process, self.conn, self.process = self.conn, self.process, None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.send_bytes(pickle.dumps(("stop",))) if self.by_value else conn.send(("stop",))
            conn.close()
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()


def _shutdown(servers: list[_Server]) -> None:
    for server in servers:
        server.stop()


def _parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise DataServerError(f"server address {text!r}: expected 'host:port'")
    return host, int(port)


class AsyncLoader:
    """Batches of one split from dataset servers, with the standard loader's order and state."""

    def __init__(
        self,
        *,
        spec: ServerSpec,
        config: LoaderConfig,
        train: bool,
        rank: int,
        world_size: int,
        sampler_factory: Callable[..., Any] | None,
        servers: int | list[str],
        prefetch: int,
        on_server_error: str,
        max_restarts: int,
        timeout: float,
        start_timeout: float,
        start_method: str,
        token: bytes | None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.train = train
        self.rank, self.world_size = rank, world_size
        self.sampler_factory = sampler_factory
        self.prefetch = prefetch
        self.on_server_error = on_server_error
        self.max_restarts = max_restarts
        self.restarts = 0
        self.timeout = timeout
        self.start_timeout = start_timeout
        self.token = token
        self.dataset = DatasetProxy(self)
        self.failures: list[str] = []
        self._core: MapLoader | None = None
        self._epoch = 0
        self._generation = 0
        self._closed = False
        self._context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(["runner_dataserver.server"])
        addresses: list[tuple[str, int] | None]
        if isinstance(servers, int):
            if servers < 1:
                raise DataServerError("servers: expected at least 1")
            addresses = [None] * servers
        else:
            if not servers:
                raise DataServerError("servers: expected at least one 'host:port'")
            addresses = [_parse_address(a) for a in servers]
        self.servers = [_Server(i, a) for i, a in enumerate(addresses)]
        self._finalizer = weakref.finalize(self, _shutdown, self.servers)
        try:
            for server in self.servers:
                self._start(server)
        except BaseException:
            self.close()
            raise

    # -- servers ------------------------------------------------------------------

    def _start(self, server: _Server) -> None:
        server.hello = None
        if server.address is None:
            parent, child = self._context.Pipe()
            process = self._context.Process(
                target=local_main, args=(child, self.spec), name=f"runner-dataserver-{server.index}", daemon=True
            )
            process.start()
            child.close()
            server.process, server.conn = process, parent
        else:
            try:
                server.conn = Client(server.address, authkey=self.token)
            except Exception as exc:
                raise DataServerError(
                    f"{server}: cannot connect: {type(exc).__name__}: {exc}"
                    + (" (wrong or missing token?)" if "digest" in str(exc) else "")
                ) from exc

    def _await_hello(self, server: _Server) -> tuple[Any, ...]:
        while server.hello is None:
            handles = [server.conn] + ([server.process.sentinel] if server.process is not None else [])
            if not wait(handles, timeout=self.start_timeout):
                self._fail(f"{server}: not ready after {self.start_timeout:g} s", restart=False)
            if server.conn.poll():
                try:
                    message = server.recv()
                except Exception as exc:
                    self._fail(f"{server}: connection lost while starting: {type(exc).__name__}: {exc}", restart=False)
                if message[0] == "error":
                    self._fail(f"{server} failed to build the dataset:\n{message[2]}", restart=False)
                server.hello = message
            else:
                code = server.process.exitcode if server.process is not None else None
                self._fail(f"{server} exited with code {code} while building the dataset", restart=False)
        return server.hello

    def _info(self) -> tuple[int, dict[str, Any]]:
        hellos = [self._await_hello(s) for s in self.servers]
        lengths = {h[1] for h in hellos}
        if len(lengths) != 1:
            raise DataServerError(f"data servers disagree on the dataset length: {sorted(lengths)}")
        return hellos[0][1], hellos[0][2]

    def _fail(self, message: str, *, restart: bool) -> None:
        """Stop everything and raise (the ``stop`` policy, or no restart possible)."""
        self.failures.append(message)
        self.close()
        raise DataServerError(message)

    def _server_failed(self, server: _Server, reason: str) -> None:
        message = f"{server} failed: {reason}"
        self.failures.append(message)
        if self.on_server_error != "restart" or self.restarts >= self.max_restarts:
            extra = "" if self.on_server_error != "restart" else f" (after {self.restarts} restarts)"
            self.close()
            raise DataServerError(message + extra)
        self.restarts += 1
        outstanding = [m for tag, m in sorted(server.outstanding.items()) if tag[0] == self._generation]
        server.outstanding.clear()
        server.stop()
        self._start(server)
        self._await_hello(server)
        for message in outstanding:
            self._send(server, message)

    def _send(self, server: _Server, message: tuple[Any, ...]) -> None:
        server.outstanding[message[1]] = message
        try:
            server.send(message)
        except Exception as exc:
            self._server_failed(server, f"cannot send a request: {type(exc).__name__}: {exc}")

    # -- the standard loader's order and state -------------------------------------------

    @property
    def core(self) -> MapLoader:
        """The core loader over the proxy (waits for the servers' dataset length)."""
        if self._core is None:
            length = len(self.dataset)
            config, seed = self.config, self.spec.seed
            if config.random_seed is not None:
                seed = config.random_seed
            sampler = None
            if self.sampler_factory is not None:
                sampler = self.sampler_factory(
                    dataset=self.dataset,
                    seed=seed,
                    batch_size=config.batch_size,
                    loader_shuffle=config.shuffle and self.train,
                    loader_drop_last=config.drop_last,
                    rank=self.rank,
                    world_size=self.world_size,
                )
            if sampler is None:
                sampler = ResumableSampler(
                    length,
                    shuffle=config.shuffle and self.train,
                    seed=seed,
                    rank=self.rank,
                    world_size=self.world_size,
                    drop_last=config.drop_last and self.world_size > 1,
                )
            core = MapLoader(
                self.dataset, sampler, batch_size=config.batch_size, drop_last=config.drop_last, collate=None
            )
            core.set_epoch(self._epoch)
            self._core = core
        return self._core

    @property
    def sampler(self) -> Any:
        return self.core.sampler

    @property
    def epoch(self) -> int:
        return self._core.epoch if self._core is not None else self._epoch

    def __len__(self) -> int:
        return len(self.core)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        if self._core is not None:
            self._core.set_epoch(epoch)

    def skip(self, batches: int) -> None:
        self.core.skip(batches)

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state: dict[str, Any], batches_consumed: int | None = None) -> None:
        self.core.load_state_dict(state, batches_consumed)
        self._epoch = self.core.epoch

    def index_batches(self) -> tuple[list[list[int]], int]:
        """This pass's index batches (after the resume position) and the first one's number."""
        core = self.core
        skip, core._skip = core._skip, 0
        offset = core._offset(skip)
        sampler = core.sampler
        if core.batched_sampler:
            if callable(getattr(sampler, "epoch_batches", None)):
                batches = [list(b) for b in sampler.epoch_batches()[offset:]]
            elif can_seek(sampler):
                sampler.set_start(offset)
                batches = [list(b) for b in sampler]
            else:
                batches = [list(b) for b in list(sampler)[offset:]]
            return [[int(i) for i in b] for b in batches], skip
        if can_seek(sampler):
            sampler.set_start(offset)
            order = [int(i) for i in sampler]
        else:
            order = [int(i) for i in list(sampler)[offset:]]
        size = core.batch_size
        stop = len(order) - (len(order) % size if core.drop_last else 0)
        return [order[b : b + size] for b in range(0, stop, size)], skip

    # -- iteration ------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        if self._closed:
            raise DataServerError("this async loader is closed")
        batches, first = self.index_batches()
        self._generation += 1
        return self._stream(batches, first, self.core.epoch, self._generation)

    def _stream(self, batches: list[list[int]], first: int, epoch: int, generation: int) -> Iterator[Any]:
        results: dict[int, Any] = {}
        sent = done = 0
        limit = self.prefetch * len(self.servers)
        for server in self.servers:
            self._await_hello(server)
        while done < len(batches):
            while sent < len(batches) and sent - done < limit:
                server = min(self.servers, key=lambda s: len(s.outstanding))
                self._send(server, ("batch", (generation, sent), epoch, first + sent, batches[sent]))
                sent += 1
            if done in results:
                batch = results.pop(done)
                done += 1
                yield batch
                continue
            self._receive(results, generation)

    def _receive(self, results: dict[int, Any], generation: int) -> None:
        by_conn = {s.conn: s for s in self.servers}
        by_sentinel = {s.process.sentinel: s for s in self.servers if s.process is not None}
        ready = wait([*by_conn, *by_sentinel], timeout=self.timeout)
        if not ready:
            waiting = ", ".join(f"{s}: {len(s.outstanding)} batches" for s in self.servers if s.outstanding)
            self._fail(f"no batch from the data servers in {self.timeout:g} s ({waiting})", restart=False)
        for handle in ready:
            server = by_conn.get(handle) or by_sentinel[handle]
            if server.conn is not handle and server.conn.poll():
                continue  # its connection is ready too: read what it sent before it exited
            if server.conn is not handle:
                code = server.process.exitcode if server.process is not None else None
                self._server_failed(server, f"process exited with code {code}")
                return
            try:
                message = server.recv()
            except Exception as exc:
                self._server_failed(server, self._lost(server, exc))
                return
            if message[0] == "error":
                self._server_failed(server, f"exception while making a batch:\n{message[2]}")
                return
            tag = message[1]
            server.outstanding.pop(tag, None)
            if tag[0] == generation:
                results[tag[1]] = message[2]

    @staticmethod
    def _lost(server: _Server, exc: BaseException) -> str:
        """Why a connection broke: the process's exit code when it died."""
        if server.process is not None:
            server.process.join(timeout=2)
            if server.process.exitcode is not None:
                return f"process exited with code {server.process.exitcode}"
        return f"connection lost: {type(exc).__name__}: {exc}"

    def close(self) -> None:
        """Stop the servers (idempotent; also run at garbage collection and interpreter exit)."""
        self._closed = True
        self._finalizer()

    def __enter__(self) -> AsyncLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_async_loader(
    params: AsyncLoaderParams,
    *,
    split: SplitConfig,
    registry: Registry,
    ctx: Any,
    train: bool,
    loader_config: LoaderConfig | None,
    sampler_factory: Callable[..., Any] | None,
) -> AsyncLoader:
    """The ``async`` loader component's loader (see :class:`AsyncLoader`), configured by ``params``."""
    servers, token_env = params.servers, params.token_env
    config = loader_config if loader_config is not None else split.loader
    rank, world_size = (getattr(ctx, "rank", 0), getattr(ctx, "world_size", 1)) if ctx is not None else (0, 1)
    distributed = config.is_distributed if config.is_distributed is not None else world_size > 1
    if not distributed:
        rank, world_size = 0, 1
    seed = ctx.seed if ctx is not None else 0
    token = None
    if not isinstance(servers, int):
        value = os.environ.get(token_env)
        if not value:
            raise DataServerError(f"remote data servers need a token: set ${token_env}")
        token = value.encode()
    spec = ServerSpec(
        split=split,
        registry=portable_registry(registry),
        recipe=getattr(ctx, "recipe", None),
        seed=seed,
        rank=rank,
        world_size=world_size,
    )
    return AsyncLoader(
        spec=spec,
        config=config,
        train=train,
        rank=rank,
        world_size=world_size,
        sampler_factory=sampler_factory,
        servers=servers,
        prefetch=params.prefetch,
        on_server_error=params.on_server_error,
        max_restarts=params.max_restarts,
        timeout=params.timeout,
        start_timeout=params.start_timeout,
        start_method=params.start_method,
        token=token,
    )
