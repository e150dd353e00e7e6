"""Helpers for experiment loggers (``[[loggers]]``), torch-free.

A logger is any object with ``log(record)`` and ``close()`` (:class:`runner.Logger`),
built on the primary process only, after ``recipe.toml`` is written to the run
directory. Records look like ``{"stage": "val", "key": "main", "epoch": 0, "step": 40,
"loss": 0.31, "accuracy": 0.93}`` (train records have no ``key`` and carry ``lr``).

- :class:`BufferedLogger` is the base for loggers whose writes are slow (network, many
  small files): ``log`` only queues the record, a daemon thread hands batches to
  :meth:`BufferedLogger.write`. An error in the thread is raised from the next ``log``
  (or ``close``), so the engine warns once, naming the plugin, and disables the logger.
- :func:`metric_items` names a record's metrics ``stage/key/name``, the way TensorBoard
  and MLflow show them; :func:`flatten` turns the resolved recipe into dotted
  hyperparameters.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

#: Keys of a record that identify it rather than measure something.
RECORD_KEYS = ("stage", "key", "epoch", "step")

_STOP = object()


def metric_name(record: Mapping[str, Any], name: str) -> str:
    """``train/loss``, ``val/main/accuracy``: stage, loader key (if any), metric."""
    key = record.get("key")
    stage = str(record.get("stage", "train"))
    return f"{stage}/{key}/{name}" if key else f"{stage}/{name}"


def metric_items(record: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """``(name, value)`` for every numeric value of ``record`` (booleans and None left out)."""
    for name, value in record.items():
        if name in RECORD_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        yield metric_name(record, name), float(value)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str | int | float | bool]:
    """Dotted keys for nested tables (``optimizer.lr``); lists and arrays of tables become JSON text."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif value is None:
            flat[name] = "none"
        else:
            flat[name] = json.dumps(value, default=str, separators=(", ", ": "))
    return flat


class BufferedLogger:
    """Queues records; a daemon thread writes them in batches, so a step never waits on I/O.

    Subclasses implement :meth:`write` (called in the thread with every record queued
    since the last call, at most ``max_batch`` at once) and optionally
    :meth:`finish` (called once from ``close`` after the last batch, with ``error`` the
    exception the run is ending with, or None).
    """

    def __init__(self, *, max_batch: int = 1000, close_timeout: float = 60.0) -> None:
        self.max_batch = max_batch
        self.close_timeout = close_timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._reported = False
        self._closed = False

    # -- called by the engine (main thread) ------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        self._raise_pending()
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name=f"runner-{type(self).__name__}", daemon=True)
            self._thread.start()
        self._queue.put(dict(record))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        run_error = sys.exc_info()[1]  # close() runs in the engine's finally: a crash is in flight
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(self.close_timeout)
            if self._thread.is_alive():
                warnings.warn(
                    f"{type(self).__name__}: records still unwritten after {self.close_timeout:.0f}s; giving up",
                    RuntimeWarning,
                    stacklevel=2,
                )
        self._raise_pending()
        self.finish(run_error)

    # -- implemented by subclasses -------------------------------------------------------

    def write(self, records: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def finish(self, error: BaseException | None) -> None:
        """Release resources after the last write; ``error`` is the exception ending the run."""

    # -- the writer thread ------------------------------------------------------------------

    def _raise_pending(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]  # wait for work, then take whatever else is queued
            while len(batch) < self.max_batch and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = batch[-1] is _STOP
            records = [r for r in batch if r is not _STOP]
            if records and self._error is None:
                try:
                    self.write(records)
                except BaseException as exc:  # raised from the main thread's next call
                    self._error = exc
            if stopping:
                return
