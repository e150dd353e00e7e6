"""The loader the engine iterates: resumable mid-epoch, with a batched fast path.

``Loader`` wraps either ``torch.utils.data.DataLoader`` (general path) or a direct
gather over in-memory tensors (fast path: one index per batch instead of per-sample
``__getitem__`` + collate). Resuming skips consumed batches by index arithmetic.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from runner.data.samplers import ResumableSampler


def seed_worker(worker_id: int) -> None:
    """Per-worker RNG re-seeding after fork (tensorpack ``reset_state``), from torch's
    per-worker base seed, which the loader derives from (seed, epoch)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    dataset = torch.utils.data.get_worker_info().dataset  # type: ignore[union-attr]
    reset = getattr(dataset, "reset_state", None)
    if callable(reset):
        reset()


class Loader:
    """Batches of one split for one epoch at a time; ``skip(n)`` resumes after n batches."""

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
        self.epoch = 0
        self._skip = 0
        self._loader: torch.utils.data.DataLoader[Any] | None = None

    def __len__(self) -> int:
        count = len(self.sampler)
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
        if isinstance(self.sampler, ResumableSampler):
            self.sampler.set_start(skip * self.batch_size)
            return self._fast_iter() if self.fast_path else iter(self._torch_loader())
        # A foreign sampler cannot seek: drop its first indices without fetching data.
        return self._iter_skipping_indices(skip)

    def _fast_iter(self) -> Iterator[Any]:
        tensors = self.dataset.tensors
        order = self.sampler.epoch_indices()[self.sampler.start :]
        self.sampler.set_start(0)
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for begin in range(0, stop, self.batch_size):
            index = order[begin : begin + self.batch_size]
            yield [t[index] for t in tensors]  # what DataLoader's default collate makes of tuples

    def _torch_loader(self, sampler: Any = None) -> torch.utils.data.DataLoader[Any]:
        if sampler is None and self.persistent_workers and self._loader is not None:
            return self._loader
        generator = torch.Generator()
        generator.manual_seed((self.seed * 1_000_003 + self.epoch) % (2**63))
        loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler if sampler is not None else self.sampler,
            drop_last=self.drop_last,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            prefetch_factor=self.prefetch_factor if self.num_workers > 0 else None,
            worker_init_fn=seed_worker if self.num_workers > 0 else None,
            generator=generator,
        )
        if sampler is None and self.persistent_workers:
            self._loader = loader
        return loader

    def _iter_skipping_indices(self, skip: int) -> Iterator[Any]:
        indices = list(iter(self.sampler))[skip * self.batch_size :]
        return iter(self._torch_loader(sampler=indices))

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"epoch": self.epoch}
        sampler_state = getattr(self.sampler, "state_dict", None)
        if callable(sampler_state):
            state["sampler"] = sampler_state()
        return state


class IterableLoader:
    """Loader for iterable datasets (unknown length): batches as they come; resume
    re-iterates and drops consumed batches (the source decides what it costs)."""

    def __init__(
        self,
        dataset: Any,
        *,
        batch_size: int,
        drop_last: bool,
        collate: Callable[[list[Any]], Any] | None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.dataset = dataset
        self.epoch = 0
        self._skip = 0
        self.batch_size = batch_size
        self._kwargs = dict(
            batch_size=batch_size,
            drop_last=drop_last,
            collate_fn=collate,
            num_workers=num_workers,
            pin_memory=pin_memory,
            worker_init_fn=seed_worker if num_workers > 0 else None,
        )

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)

    def skip(self, batches: int) -> None:
        self._skip = batches

    def __iter__(self) -> Iterator[Any]:
        skip, self._skip = self._skip, 0
        iterator = iter(torch.utils.data.DataLoader(self.dataset, **self._kwargs))  # type: ignore[arg-type]
        for _ in range(skip):
            next(iterator, None)
        return iterator

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}
