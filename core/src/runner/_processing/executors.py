"""Executors of ``[[process]]`` steps: how the shards a step has to (re)compute get run.

An executor is a component (``register_executors``) built from the step's ``executor``
value (``"process"`` or ``{ name = "ray", ... }``) whose ``run(processor, shards, cache,
workers)`` processes every shard (:func:`~runner._processing.shards.process_shard`) and
writes each output with ``cache.write_shard(shard.key, data)``. The cache key never
depends on the executor, so an output computed by one is reused by all.

The built-in executors are ``process`` (``workers`` processes; PyMarlin's
``multi_process_data``), ``thread`` and ``inline``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from runner._processing.cache import Cache
from runner._processing.shards import Shard, process_shard


@runtime_checkable
class ShardExecutor(Protocol):
    """Runs a step's missing shards."""

    def run(self, processor: Any, shards: Sequence[Shard], cache: Cache, workers: int) -> None:
        """Process every shard of ``shards`` and write its output to ``cache``, using up to
        ``workers`` (the step's ``process_count``) at a time where that applies. Exceptions
        raised by the processor propagate unchanged."""
        ...


def run_shards(processor: Any, shards: Sequence[Shard], cache: Cache) -> list[str]:
    """Process ``shards`` one after the other in this process; the keys written."""
    done = []
    for shard in shards:
        cache.write_shard(shard.key, process_shard(processor, shard))
        done.append(shard.key)
    return done


def split_evenly(shards: Sequence[Shard], workers: int) -> list[list[Shard]]:
    """``workers`` round-robin chunks, as PyMarlin splits list inputs across processes."""
    count = max(1, min(workers, len(shards)))
    return [list(shards[i::count]) for i in range(count)]


class InlineExecutor:
    """Every shard in this process, one after the other (``workers`` is ignored)."""

    def run(self, processor: Any, shards: Sequence[Shard], cache: Cache, workers: int) -> None:
        run_shards(processor, shards, cache)


class ThreadExecutor:
    """``workers`` threads sharing the processor object."""

    def run(self, processor: Any, shards: Sequence[Shard], cache: Cache, workers: int) -> None:
        chunks = split_evenly(shards, workers)
        if len(chunks) <= 1:
            run_shards(processor, shards, cache)
            return
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            for future in [pool.submit(run_shards, processor, chunk, cache) for chunk in chunks]:
                future.result()


_WORKER_PROCESSOR: Any = None


def _init_worker(processor: Any) -> None:  # fork: the processor is inherited, not pickled
    global _WORKER_PROCESSOR
    _WORKER_PROCESSOR = processor


def _run_shards_in_worker(shards: list[Shard], cache: Cache) -> list[str]:
    return run_shards(_WORKER_PROCESSOR, shards, cache)


class ProcessExecutor:
    """``workers`` worker processes, each given a round-robin share of the shards. The
    processor is inherited through ``fork`` where the platform has it (pickled otherwise)."""

    def run(self, processor: Any, shards: Sequence[Shard], cache: Cache, workers: int) -> None:
        chunks = split_evenly(shards, workers)
        if len(chunks) <= 1:
            run_shards(processor, shards, cache)
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with ProcessPoolExecutor(
            max_workers=len(chunks), mp_context=context, initializer=_init_worker, initargs=(processor,)
        ) as pool:
            for future in [pool.submit(_run_shards_in_worker, chunk, cache) for chunk in chunks]:
                future.result()
