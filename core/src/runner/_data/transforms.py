"""Dataflow composition (tensorpack ``map``, ``BatchData`` + map, ``LocallyShuffleData``,
``PrefetchData``) for a split's ``transforms = [...]`` pipeline.

A transform built from the registry is classified by its ``level`` attribute:

- ``"sample"`` (the default, any plain callable): ``transform(sample, rng) -> sample``,
  applied to each sample wherever it is fetched (a loader worker or the main process).
- ``"batch"``: ``transform(batch, rng) -> batch``, applied to each collated batch.
- ``"stream"``: ``transform.stream(items, rng) -> items`` over the whole sample stream of
  an iterable source (a shuffle buffer); map-style datasets use the loader's ``shuffle``.
- ``"loader"``: ``transform.loader_options() -> dict`` of loader settings (``prefetch``:
  worker processes and batches in flight).

Every random draw comes from an RNG keyed by ``(seed, epoch, sample index)`` (batch
transforms: ``(seed, epoch, batch index, 1)``; stream transforms: ``(seed, epoch)``), so
results never depend on ``num_workers``, on which worker fetched a sample, or on resume.
The framework builds these RNGs; nothing is left to per-worker ``reset_state``.

A deterministic sample transform may also define ``fold(tensors) -> tensors``: leading
foldable transforms are applied once to an in-memory dataset's tensors at build time, so
such a pipeline keeps the loader's batched fast path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import numpy as np
import torch

LEVELS = ("sample", "batch", "stream", "loader")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The RNG of sample ``index`` in ``epoch`` (independent of workers and resume)."""
    return np.random.default_rng([seed, epoch, index])


def batch_rng(seed: int, epoch: int, batch: int) -> np.random.Generator:
    """The RNG of batch number ``batch`` in ``epoch``."""
    return np.random.default_rng([seed, epoch, batch, 1])


def level_of(transform: Any) -> str:
    level = getattr(transform, "level", "sample")
    if level not in LEVELS:
        raise ValueError(f"transform {transform!r} has level {level!r}; expected one of {', '.join(LEVELS)}")
    return str(level)


@attrs.define
class Pipeline:
    """A split's transforms sorted by level (recipe order kept within each level)."""

    sample: list[Any] = attrs.Factory(list)
    batch: list[Any] = attrs.Factory(list)
    stream: list[Any] = attrs.Factory(list)
    loader_options: dict[str, Any] = attrs.Factory(dict)

    @classmethod
    def of(cls, transforms: Iterable[Any]) -> Pipeline:
        pipeline = cls()
        for transform in transforms:
            level = level_of(transform)
            if level == "loader":
                pipeline.loader_options.update(transform.loader_options())
            else:
                getattr(pipeline, level).append(transform)
        return pipeline

    def fold_into(self, tensors: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], list[Any]]:
        """Apply the leading foldable sample transforms to ``tensors``; return what remains."""
        remaining = list(self.sample)
        while remaining and callable(getattr(remaining[0], "fold", None)):
            tensors = tuple(remaining.pop(0).fold(tensors))
        return tensors, remaining


def apply_batch_transforms(batch: Any, transforms: list[Any], seed: int, epoch: int, number: int) -> Any:
    rng = batch_rng(seed, epoch, number)
    for transform in transforms:
        batch = transform(batch, rng)
    return batch


class TransformedDataset(torch.utils.data.Dataset[Any]):
    """Applies sample transforms with an RNG keyed by (seed, epoch, index).

    Indices may be plain ints (the epoch set by :meth:`set_epoch` applies) or
    ``(epoch, index)`` pairs, which the loader sends so that persistent workers, whose
    copy of the dataset never sees ``set_epoch``, still use the right epoch.
    """

    keyed_by_epoch = True

    def __init__(self, dataset: Any, transforms: list[Any], seed: int) -> None:
        self.dataset = dataset
        self.runner_wraps = dataset  # reset_state() reaches it (runner._data.reset)
        self.transforms = transforms
        self.seed = seed
        self.epoch = 0
        self.meta = getattr(dataset, "meta", {})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        sample = self.dataset[index]
        rng = sample_rng(self.seed, epoch, index)
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


class IterablePipeline(torch.utils.data.IterableDataset[Any]):
    """An iterable source with stream and sample transforms, sharded and resumable.

    Per pass: source items -> stream transforms (seeded by (seed, epoch)) -> position
    ``p`` -> rank share (``p % world_size == rank``) -> skip the first ``start`` items of
    this rank (never transformed) -> worker share by whole batches (worker ``w`` of ``n``
    takes batches ``w, w + n, ...``, which ``DataLoader`` interleaves back in order, so
    batches are the same for any ``num_workers``) -> sample transforms keyed by
    (seed, epoch, p).
    """

    keyed_by_epoch = False

    def __init__(
        self,
        source: Any,
        *,
        sample_transforms: list[Any],
        stream_transforms: list[Any],
        seed: int,
        batch_size: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.source = source
        self.runner_wraps = source  # reset_state() reaches it (runner._data.reset)
        self.sample_transforms = sample_transforms
        self.stream_transforms = stream_transforms
        self.seed = seed
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0
        self.meta = getattr(source, "meta", {})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_epoch = getattr(self.source, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's next pass."""
        self.start = start

    def __len__(self) -> int:
        total = len(self.source)
        return total // self.world_size + (1 if self.rank < total % self.world_size else 0)

    def __iter__(self) -> Iterator[Any]:
        items: Iterator[Any] = iter(self.source)
        stream_rng = np.random.default_rng([self.seed, self.epoch, 2])
        for transform in self.stream_transforms:
            items = iter(transform.stream(items, stream_rng))
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        start, epoch, seed, batch_size = self.start, self.epoch, self.seed, self.batch_size
        world, rank = self.world_size, self.rank
        local = -1
        for position, item in enumerate(items):
            if world > 1 and position % world != rank:
                continue
            local += 1
            if local < start:
                continue
            if workers > 1 and ((local - start) // batch_size) % workers != worker:
                continue
            if self.sample_transforms:
                rng = sample_rng(seed, epoch, position)
                for transform in self.sample_transforms:
                    item = transform(item, rng)
            yield item


class ShuffleBuffer:
    """Stream transform: a shuffle buffer of ``size`` items (tensorpack ``LocallyShuffleData``)."""

    level = "stream"

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"shuffle buffer size must be at least 1, found {size}")
        self.size = size

    def stream(self, items: Iterator[Any], rng: np.random.Generator) -> Iterator[Any]:
        buffer: list[Any] = []
        for item in items:
            if len(buffer) < self.size:
                buffer.append(item)
                continue
            slot = int(rng.integers(self.size))
            buffer[slot], item = item, buffer[slot]
            yield item
        order = rng.permutation(len(buffer))
        for slot in order:
            yield buffer[int(slot)]


class Prefetch:
    """Loader transform: run the pipeline in ``processes`` background worker processes
    with ``buffer`` batches in flight each (tensorpack ``PrefetchData``)."""

    level = "loader"

    def __init__(self, processes: int = 2, buffer: int = 2) -> None:
        self.processes = processes
        self.buffer = buffer

    def loader_options(self) -> dict[str, Any]:
        return {"num_workers": self.processes, "prefetch_factor": self.buffer}
