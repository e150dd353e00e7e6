"""The loader the engine iterates: resumable mid-epoch, with a batched fast path.

``Loader`` wraps either ``torch.utils.data.DataLoader`` (general path) or a direct
gather over in-memory tensors (fast path: one index per batch instead of per-sample
``__getitem__`` + collate). Resuming skips consumed batches by index arithmetic: the
sampler starts at the first unconsumed position, so a skipped sample is never fetched,
transformed or collated, with any number of workers.

The batches of an epoch are a pure function of (seed, epoch, dataset, loader settings):
sample order comes from the sampler, random transforms draw from RNGs keyed by
(seed, epoch, index), and workers only change *where* a sample is computed. So a
resumed epoch yields exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from runner._data.reset import reset_state_once
from runner._data.transforms import apply_batch_transforms
from runner._samplers.protocol import can_seek, is_batch_sampler


def seed_worker(worker_id: int) -> None:
    """Per-worker RNG re-seeding after fork, from torch's per-worker base seed, which the
    loader derives from (seed, epoch), then the dataset's ``reset_state()`` (tensorpack),
    through any wrappers (:mod:`runner._data.reset`). Transforms never rely on these global
    RNGs (they get keyed ones); this only protects user code that does.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    info = torch.utils.data.get_worker_info()
    if info is not None:
        reset_state_once(info.dataset)


class _EpochKeyed:
    """Sends ``(epoch, index)`` keys instead of indices (and lists of them for batches),
    reading the loader's epoch at iteration time, so persistent workers stay in step."""

    def __init__(self, indices: Iterable[Any], loader: Loader, batches: bool) -> None:
        self.indices = indices
        self.loader = loader
        self.batches = batches

    def __len__(self) -> int:
        return len(self.indices)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        epoch = self.loader.epoch
        if self.batches:
            return ([(epoch, i) for i in batch] for batch in self.indices)
        return ((epoch, i) for i in self.indices)


class Loader:
    """Batches of one split for one epoch at a time; ``skip(n)`` resumes after n batches.

    ``sampler`` yields indices (then ``batch_size``/``drop_last`` batch them) or, when it
    is a batch sampler (``is_batch_sampler``), whole batches.
    """

    def __init__(
        self,
        dataset: Any,
        sampler: Any,
        *,
        batch_size: int,
        drop_last: bool,
        collate: Callable[[list[Any]], Any] | None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        seed: int = 0,
        fast_path: bool = False,
        batch_transforms: list[Any] | None = None,
    ) -> None:
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.collate = collate
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.prefetch_factor = prefetch_factor
        self.seed = seed
        self.fast_path = fast_path
        self.batch_transforms = list(batch_transforms or [])
        self.batched_sampler = is_batch_sampler(sampler)
        self.keyed = bool(getattr(dataset, "keyed_by_epoch", False))
        self.epoch = 0
        self._skip = 0
        self._loader: torch.utils.data.DataLoader[Any] | None = None

    def __len__(self) -> int:
        count = len(self.sampler)
        if self.batched_sampler:
            return count
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        for target in (self.sampler, self.dataset):
            set_epoch = getattr(target, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(epoch)

    def skip(self, batches: int) -> None:
        """Start the next iteration after ``batches`` batches of the current epoch."""
        self._skip = batches

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        if self.fast_path or self.num_workers == 0:
            reset_state_once(self.dataset)  # this process runs the dataset (workers reset their own)
        batches = self._fast_iter(skip) if self.fast_path else self._general_iter(skip)
        if self.batch_transforms:
            return self._transform_batches(batches, skip)
        return batches

    # -- fast path: one gather per batch over in-memory tensors -------------------------

    def _fast_iter(self, skip: int) -> Iterator[Any]:
        tensors = self.dataset.tensors
        sampler = self.sampler
        offset = self._offset(skip)
        if self.batched_sampler:
            for batch in sampler.epoch_batches()[offset:]:
                index = torch.as_tensor(batch, dtype=torch.long)
                yield [t[index] for t in tensors]
            return
        order = sampler.epoch_indices()[offset:]
        size = self.batch_size
        stop = len(order) - (len(order) % size if self.drop_last else 0)
        for begin in range(0, stop, size):
            index = order[begin : begin + size]
            yield [t[index] for t in tensors]  # what DataLoader's default collate makes of tuples

    def _offset(self, skip: int) -> int:
        """Where this pass starts in the sampler's units: after ``skip`` batches, or at the
        sampler's own start position (set by its ``load_state_dict``) when not skipping."""
        if skip:
            return skip if self.batched_sampler else skip * self.batch_size
        start = getattr(self.sampler, "start", 0)
        if isinstance(start, int) and start and can_seek(self.sampler):
            self.sampler.set_start(0)
            return start
        return 0

    # -- general path: torch DataLoader over the remaining indices -----------------------

    def _general_iter(self, skip: int) -> Iterator[Any]:
        sampler = self.sampler
        offset = self._offset(skip)
        if can_seek(sampler):
            sampler.set_start(offset)
            return iter(self._torch_loader())
        # A foreign sampler cannot seek: drop its first indices without fetching data.
        return iter(self._torch_loader(indices=list(iter(sampler))[offset:]))

    def _torch_loader(self, indices: list[Any] | None = None) -> torch.utils.data.DataLoader[Any]:
        reuse = indices is None and self.persistent_workers
        if reuse and self._loader is not None:
            return self._loader
        source: Any = self.sampler if indices is None else indices
        if self.keyed:
            source = _EpochKeyed(source, self, self.batched_sampler)
        generator = torch.Generator()
        generator.manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63))
        options: dict[str, Any] = {
            "collate_fn": self.collate,
            "num_workers": self.num_workers,
            "pin_memory": self.pin_memory,
            "persistent_workers": self.persistent_workers,
            "prefetch_factor": self.prefetch_factor if self.num_workers > 0 else None,
            "worker_init_fn": seed_worker if self.num_workers > 0 else None,
            "generator": generator,
        }
        if self.batched_sampler:
            options["batch_sampler"] = source
        else:
            options.update(sampler=source, batch_size=self.batch_size, drop_last=self.drop_last)
        loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(self.dataset, **options)
        if reuse:
            self._loader = loader
        return loader

    def _transform_batches(self, batches: Iterator[Any], skip: int) -> Iterator[Any]:
        transforms, seed, epoch = self.batch_transforms, self.seed, self.epoch
        for number, batch in enumerate(batches, start=skip):
            yield apply_batch_transforms(batch, transforms, seed, epoch, number)

    def close(self) -> None:
        """Stop persistent workers now (the engine calls it at teardown), rather than from
        a finalizer at interpreter exit, when terminating them may no longer work."""
        loader, self._loader = self._loader, None
        iterator = getattr(loader, "_iterator", None)
        if iterator is not None:
            iterator._shutdown_workers()  # torch offers no public way to stop persistent workers

    # -- state ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self.epoch}
        sampler_state = getattr(self.sampler, "state_dict", None)
        if callable(sampler_state):
            state["sampler"] = sampler_state()
        return state

    def load_state_dict(self, state: dict[str, Any], batches_consumed: int | None = None) -> None:
        """Restore the epoch (and sampler state); ``batches_consumed`` positions the next pass."""
        self.set_epoch(int(state["epoch"]))
        sampler_load = getattr(self.sampler, "load_state_dict", None)
        if callable(sampler_load) and "sampler" in state:
            sampler_load(state["sampler"])
        if batches_consumed is not None:
            self.skip(batches_consumed)


class IterableLoader:
    """Loader for iterable datasets (tensorpack dataflows): batches as they come.

    With an :class:`~runner._data.transforms.IterablePipeline`, resuming tells the pipeline
    to drop the consumed samples before transforming them, and workers split the stream
    by whole batches so the batches are the same for any ``num_workers``. A source with
    ``set_start`` (one that shards itself) is told the first sample to yield; other iterable
    datasets resume by re-iterating and dropping consumed batches. ``yields_batches``: each
    item the source yields is a whole batch (not batched or collated again).
    """

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int,
        drop_last: bool,
        collate: Callable[[list[Any]], Any] | None,
        num_workers: int = 0,
        pin_memory: bool = False,
        prefetch_factor: int | None = None,
        seed: int = 0,
        batch_transforms: list[Any] | None = None,
        yields_batches: bool = False,
    ) -> None:
        self.dataset = dataset
        self.epoch = 0
        self._skip = 0
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.batch_transforms = list(batch_transforms or [])
        self.num_workers = num_workers
        # Whole batches in this process need nothing of torch's loader (about 50 us a batch).
        self._direct = yields_batches and num_workers == 0 and not pin_memory
        # A source that yields whole batches is not batched again (torch's batch_size=None).
        self._kwargs: dict[str, Any] = dict(
            batch_size=None if yields_batches else batch_size,
            drop_last=False if yields_batches else drop_last,
            collate_fn=collate,
            num_workers=num_workers,
            pin_memory=pin_memory,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            worker_init_fn=seed_worker if num_workers > 0 else None,
        )

    def __len__(self) -> int:
        """Batches per epoch; a ``TypeError`` when the source's length is unknown."""
        try:
            count = len(self.dataset)
        except TypeError as exc:
            raise TypeError(
                "this loader's iterable source has no known length (give the source a length, "
                "or iterate it without len())"
            ) from exc
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def skip(self, batches: int) -> None:
        self._skip = batches

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        if self.num_workers == 0:
            reset_state_once(self.dataset)  # this process runs the source (workers reset their own)
        if can_seek(self.dataset):
            self.dataset.set_start(skip * self.batch_size)
            source = self.dataset if self._direct else torch.utils.data.DataLoader(self.dataset, **self._kwargs)
            iterator: Iterator[Any] = iter(source)
        else:
            iterator = iter(torch.utils.data.DataLoader(self.dataset, **self._kwargs))
            for _ in range(skip):
                next(iterator, None)
        if not self.batch_transforms:
            return iterator
        return self._transform_batches(iterator, skip)

    def _transform_batches(self, batches: Iterator[Any], skip: int) -> Iterator[Any]:
        for number, batch in enumerate(batches, start=skip):
            yield apply_batch_transforms(batch, self.batch_transforms, self.seed, self.epoch, number)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any], batches_consumed: int | None = None) -> None:
        self.set_epoch(int(state["epoch"]))
        if batches_consumed is not None:
            self.skip(batches_consumed)


def known_length(loader: Any) -> int | None:
    """Batches per epoch of ``loader``, or None when its source's length is unknown (an
    iterable source without ``length``: the epoch ends when the stream does)."""
    try:
        return len(loader)
    except TypeError:
        return None
