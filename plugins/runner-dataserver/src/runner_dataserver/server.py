"""Dataset servers: build a split's dataset once, then answer index batches with collated batches.

Messages (tuples) on one connection per server:

- server -> client, first: ``("ready", length, meta)`` or ``("error", None, traceback)``;
- client -> server: ``("batch", tag, epoch, number, indices)`` or ``("stop",)``;
- server -> client: ``("batch", tag, batch)`` or ``("error", tag, traceback)``.

Local servers send through ``Connection.send`` (multiprocessing's ForkingPickler, with
torch's reductions registered): tensors travel as shared-memory file descriptors, not
bytes. Remote servers pickle by value (``send_bytes``), behind the token's HMAC handshake
(:mod:`runner_dataserver.handshake`: one thread per client, handshakes time out).
"""

from __future__ import annotations

import pickle
import signal
import sys
import threading
import traceback
from typing import Any

import attrs
import torch
import torch.multiprocessing
from torch.utils.data import IterableDataset, default_collate

from runner import (
    BuildContext,
    Component,
    Pipeline,
    Registry,
    RunnerError,
    SplitConfig,
    apply_batch_transforms,
    build_dataset,
    build_transforms,
    tensors_of,
)
from runner_dataserver.handshake import HANDSHAKE_TIMEOUT, accept_forever, listen

SERVED_KINDS = ("dataset", "transform", "collate", "function")


def portable_registry(registry: Registry) -> Registry:
    """The components a server needs (datasets, transforms, collates and the functions they name), those that pickle."""
    portable = Registry()
    for component in registry:
        if component.kind not in SERVED_KINDS:
            continue
        copy = Component(component.kind, component.name, component.factory_ref, component.plugin, component.params)
        try:
            pickle.dumps(copy)
        except Exception:
            continue
        portable.add(copy)
    return portable


@attrs.frozen
class ServerSpec:
    """What a server needs to build the split: everything picklable."""

    split: SplitConfig
    registry: Registry
    recipe: Any
    seed: int
    rank: int = 0
    world_size: int = 1


class Worker:
    """The split's dataset, collate and batch transforms; ``batch()`` makes one batch."""

    def __init__(self, spec: ServerSpec) -> None:
        ctx = BuildContext(recipe=spec.recipe, seed=spec.seed, run_dir=None, rank=spec.rank, world_size=spec.world_size)  # type: ignore[arg-type]
        split = attrs.evolve(spec.split, loader_component=None)
        loader = split.loader
        self.seed = loader.random_seed if loader.random_seed is not None else spec.seed
        self.dataset = build_dataset(split, spec.registry, ctx)
        if isinstance(self.dataset, IterableDataset):
            raise RunnerError("the async loader needs a map-style dataset (iterable sources stream in order)")
        self.collate = (
            spec.registry.get("collate", split.collate.name).build(split.collate.params, ctx=ctx)
            if split.collate
            else None
        )
        pipeline = build_transforms(split.transforms, spec.registry, ctx) if split.transforms else Pipeline()
        self.batch_transforms = list(pipeline.batch)
        self.tensors = tensors_of(self.dataset) if self.collate is None else None
        self.keyed = bool(getattr(self.dataset, "keyed_by_epoch", False))
        self.epoch: int | None = None
        self.lock = threading.Lock()

    def hello(self) -> tuple[Any, ...]:
        return ("ready", len(self.dataset), dict(getattr(self.dataset, "meta", None) or {}))

    def batch(self, epoch: int, number: int, indices: list[int]) -> Any:
        with self.lock:
            if epoch != self.epoch:
                set_epoch = getattr(self.dataset, "set_epoch", None)
                if callable(set_epoch):
                    set_epoch(epoch)
                self.epoch = epoch
            if self.tensors is not None:
                index = torch.as_tensor(indices, dtype=torch.long)
                batch: Any = [t[index] for t in self.tensors]
            else:
                samples = [self.dataset[(epoch, i) if self.keyed else i] for i in indices]
                batch = (self.collate or default_collate)(samples)
            if self.batch_transforms:
                batch = apply_batch_transforms(batch, self.batch_transforms, self.seed, epoch, number)
            return batch


def _error() -> str:
    return "".join(traceback.format_exception(*sys.exc_info())).rstrip()


def serve(conn: Any, worker: Worker, *, by_value: bool) -> None:
    """Answer requests on ``conn`` until ``stop`` or the client goes away."""

    def send(message: Any) -> None:
        if by_value:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        else:
            conn.send(message)

    send(worker.hello())
    while True:
        try:
            message = pickle.loads(conn.recv_bytes()) if by_value else conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, tag, epoch, number, indices = message
        try:
            batch = worker.batch(epoch, number, indices)
        except Exception:
            # Report and keep the process (and its resource sharer) alive: batches sent
            # before still hand their shared memory over; the client stops this server.
            send(("error", tag, _error()))
            continue
        send(("batch", tag, batch))


def local_main(conn: Any, spec: ServerSpec) -> None:
    """Entry point of a local server process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the client's to handle
    try:
        worker = Worker(spec)
    except BaseException:
        conn.send(("error", None, _error()))
        return
    serve(conn, worker, by_value=False)


def serve_remote(
    address: tuple[str, int],
    token: bytes,
    spec: ServerSpec,
    report: Any = print,
    *,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> None:
    """Serve ``spec``'s split to authenticated clients at ``address`` until interrupted.

    Each connection is authenticated and served in its own thread; a client that does not
    complete the handshake within ``handshake_timeout`` seconds is disconnected and
    reported, and never delays the others.
    """
    worker = Worker(spec)
    try:
        sock = listen(address)
    except OSError as exc:
        raise RunnerError(f"cannot listen at {address[0]}:{address[1]}: {exc.strerror or exc}") from None
    with sock:
        host, port = sock.getsockname()[:2]
        report(f"serving {len(worker.dataset)} samples at {host}:{port}")
        accept_forever(
            sock,
            token,
            lambda conn: _serve_client(conn, worker, report),
            timeout=handshake_timeout,
            report=report,
        )


def _serve_client(conn: Any, worker: Worker, report: Any = print) -> None:
    try:
        serve(conn, worker, by_value=True)
    except (EOFError, OSError) as exc:  # the client went away while a batch was sent
        report(f"lost a client: {type(exc).__name__}: {exc}")
    finally:
        conn.close()
