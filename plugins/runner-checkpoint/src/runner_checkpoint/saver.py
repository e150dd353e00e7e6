"""How a captured run state becomes a checkpoint: now or in the background, by the primary
alone or by every rank (sharded tensors).

- **Synchronous** (the default): the state is written before the step continues.
- **Asynchronous** (``[checkpoint] async = true``): the state is copied to host memory
  (:mod:`runner_checkpoint.staging`) and written by a background thread; the step waits
  only for the copy. A save waits for the previous one to finish first (so one snapshot
  at most is in memory and saves commit in order); :meth:`Saver.wait` joins the write in
  flight and raises its error, if any. The checkpointer waits at teardown and on a
  signal: the process never exits with a write in flight.
- **Sharded** (the state holds DTensors: the fsdp backend): every rank writes its shards
  through torch.distributed.checkpoint into the checkpoint's temporary directory, whose
  name the primary chose and sent to all; then the primary writes the rest, the manifest
  (every rank's files with their sha256), and commits. In the background, the shards go
  over a process group of their own (gloo), so the write's collectives never meet the
  training's.

Whatever the mode, the commit is the store's crash-safe protocol: a process killed while
writing leaves the previous checkpoint as ``latest``.
"""

from __future__ import annotations

import atexit
import functools
import multiprocessing.util
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

import attrs

from runner_checkpoint import checkpoint
from runner_checkpoint.codec import has_shards
from runner_checkpoint.manifest import SHARDED_FORMAT_VERSION
from runner_checkpoint.staging import Stager
from runner_checkpoint.store import Entry, Pending, Store


@attrs.frozen
class Job:
    """One save: the state (or its staged copy) and what the manifest records."""

    state: dict[str, Any]
    step: int
    #: What the manifest records; a callable value is called by the writer (maybe in the background).
    meta: dict[str, Any]
    provenance: Any
    primary: bool
    #: Called with the committed entry on the primary (retention runs there, after the commit).
    committed: Callable[[Entry], None]


class Writer:
    """The background thread: runs one write at a time, handed over without starting a
    thread per save (a start waits for the scheduler: milliseconds on a busy machine).

    It is a daemon thread so that it never keeps a crashed process alive; the checkpointer
    waits for every write it hands over (:meth:`Saver.wait`), and :func:`_wait_at_exit`
    waits at interpreter exit too.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._done = threading.Event()
        self._done.set()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="runner-checkpoint-save", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._done.clear()
        self._jobs.put(job)

    def wait(self) -> None:
        self._done.wait()

    @property
    def busy(self) -> bool:
        return not self._done.is_set()

    def close(self) -> None:
        self.wait()
        self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except BaseException as exc:  # raised by Saver.wait(), in the training thread
                self.error = exc
            finally:
                self._done.set()


_writers: weakref.WeakSet[Writer] = weakref.WeakSet()


@atexit.register
def _wait_at_exit() -> None:
    """The interpreter is exiting: let a write in flight finish (its thread is a daemon)."""
    for writer in list(_writers):
        writer.wait()


# Worker processes started by multiprocessing (the ddp and fsdp backends' ranks) leave with
# os._exit and skip atexit; they run multiprocessing's finalizers.
multiprocessing.util.Finalize(None, _wait_at_exit, exitpriority=100)


class Saver:
    """Writes the checkpoints of one run; :attr:`asynchronous` says whether in the background."""

    def __init__(self, store: Store, asynchronous: bool) -> None:
        self.store = store
        self.asynchronous = asynchronous
        self.stager = Stager()
        self._writer: Writer | None = None
        self._group: Any = None  # the background writes' process group (sharded, asynchronous)

    # -- the write in flight -------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a background write is in flight."""
        return self._writer is not None and self._writer.busy

    def wait(self) -> None:
        """Wait for the write in flight (if any); raise the error it ended with."""
        if self._writer is None:
            return
        self._writer.wait()
        error, self._writer.error = self._writer.error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait for the write in flight and stop the background thread (raises the write's error)."""
        try:
            self.wait()
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    # -- saving ----------------------------------------------------------------------------

    def save(self, job: Job) -> None:
        """Write ``job``: now, or (asynchronously) after copying its state to host memory."""
        self.wait()  # a second save waits for the first
        sharded = has_shards(job.state)
        if not sharded and not job.primary:
            return  # the primary writes the whole state: nothing to copy or write here
        if self.asynchronous:
            job = attrs.evolve(job, state=self.stager.stage(job.state))
        pending = self._begin_sharded(job) if sharded else None
        if not self.asynchronous:
            self._write(job, pending)
            return
        group = self._background_group() if sharded else None
        if self._writer is None:
            self._writer = Writer()
            _writers.add(self._writer)
        self._writer.submit(functools.partial(self._write, job, pending, group))

    def _write(self, job: Job, pending: Pending | None, group: Any = None) -> None:
        # Values of the manifest computed by the writer (a callable: the metrics prefix hash).
        job = attrs.evolve(job, meta={k: v() if callable(v) else v for k, v in job.meta.items()})
        encoded = checkpoint.encode(job.state, job.provenance)
        if pending is None:
            if job.primary:
                entry = self.store.commit(job.step, checkpoint.file_writer(encoded), job.meta)
                job.committed(entry)
            return
        from runner_checkpoint import sharded

        try:
            written = sharded.write(pending.tmp, encoded.shards, group)  # every rank: its shards
        except BaseException:
            if job.primary:
                self.store.abandon(pending)
            raise
        if job.primary:
            entry = self.store.finish(
                pending, checkpoint.file_writer(encoded, written), job.meta, SHARDED_FORMAT_VERSION
            )
            job.committed(entry)

    def _begin_sharded(self, job: Job) -> Pending:
        """The primary reserves the checkpoint's temporary directory; every rank learns it."""
        import torch.distributed as dist

        pending = [self.store.begin(job.step) if job.primary else None]
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast_object_list(pending, src=0)
        assert pending[0] is not None
        return pending[0]

    def _background_group(self) -> Any:
        """A gloo process group for background writes (created once, by every rank)."""
        import torch.distributed as dist

        if self._group is None:
            self._group = dist.new_group(backend="gloo")
        return self._group
