"""Resumable samplers (public as ``runner.IndexSampler`` and friends): the order of an
epoch is a pure function of (seed, epoch), and a sampler can start at any position by
index arithmetic, without touching the data.

Two shapes share one protocol (``set_epoch``, ``set_start``, ``state_dict``,
``load_state_dict``; see :mod:`runner._samplers.protocol`):

- :class:`IndexSampler` yields sample indices; ``set_start(k)`` skips ``k`` samples.
- :class:`BatchIndexSampler` yields whole batches (lists of indices), e.g. bucketing by
  length; ``set_start(k)`` skips ``k`` batches.

Sharding over ranks (``rank``/``world_size``) pads or drops the tail so that every rank
takes the same number of steps, like ``torch.utils.data.DistributedSampler``:

- ``drop_last=False``: the epoch is padded with indices from its own start until its
  length divides by ``world_size`` (a padded sample is seen twice, at most once more than
  any other); rank ``r`` takes positions ``r, r + world_size, ...``.
- ``drop_last=True``: the tail (``length % world_size`` samples) is dropped; every
  remaining sample is seen exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator whose stream depends only on ``seed`` and ``epoch``."""
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + epoch) % (2**63))
    return generator


def shard(order: torch.Tensor, rank: int, world_size: int, drop_last: bool) -> torch.Tensor:
    """Rank ``rank``'s share of ``order`` (padding or dropping the tail, see the module doc)."""
    if world_size == 1:
        return order
    length = len(order)
    per_rank = length // world_size if drop_last else -(-length // world_size)
    total = per_rank * world_size
    if total > length:
        repeats = -(-total // max(length, 1))
        order = order.repeat(repeats)[:total]
    else:
        order = order[:total]
    return order[rank::world_size]


class _Positioned:
    """Epoch and start position shared by both sampler shapes."""

    seed: int
    epoch: int
    start: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        """Begin the current epoch's next pass at position ``start`` of this rank's order."""
        self.start = start

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.start = int(state["start"])


class IndexSampler(_Positioned, torch.utils.data.Sampler[int]):
    """Base of resumable per-sample samplers: subclasses define :meth:`epoch_indices`."""

    def __init__(self, *, seed: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0

    def epoch_indices(self) -> torch.Tensor:  # pragma: no cover - abstract
        """This rank's full order for the current epoch (int64 tensor)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[int]:
        # A generator: the start position is consumed when iteration begins, not when
        # iter() is called (DataLoader calls iter() on its sampler more than once).
        order = self.epoch_indices()[self.start :]
        self.start = 0
        yield from order.tolist()


class ResumableSampler(IndexSampler):
    """Sequential or shuffled order, optionally sharded over ``world_size`` ranks.

    ``set_start(k)`` skips the first ``k`` indices of this rank's share, for one pass.
    """

    def __init__(
        self,
        length: int,
        *,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size, drop_last=drop_last)
        self.length = length
        self.shuffle = shuffle

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.length
        if self.drop_last:
            return self.length // self.world_size
        return -(-self.length // self.world_size)

    def epoch_indices(self) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.length, generator=epoch_generator(self.seed, self.epoch))
        else:
            order = torch.arange(self.length)
        return shard(order, self.rank, self.world_size, self.drop_last)


class BatchIndexSampler(_Positioned, torch.utils.data.Sampler[list[int]]):
    """Base of resumable batch samplers: subclasses define :meth:`epoch_batches`.

    The loader uses a batch sampler's batches as they are (its ``batch_size`` and
    ``drop_last`` are the sampler's business); ``set_start(k)`` skips ``k`` batches.
    """

    is_batch_sampler = True

    def __init__(self, *, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def epoch_batches(self) -> list[list[int]]:  # pragma: no cover - abstract
        """This rank's batches for the current epoch."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.epoch_batches())

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.epoch_batches()[self.start :]  # consumed lazily, see IndexSampler.__iter__
        self.start = 0
        yield from batches
