"""Resumable samplers: the order of an epoch is a pure function of (seed, epoch), and a
sampler can start at any position by index arithmetic, without touching the data.
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


class ResumableSampler(torch.utils.data.Sampler[int]):
    """Sequential or shuffled order, optionally sharded over ``world_size`` ranks.

    Sharding pads the epoch with indices from its start so every rank gets the same count
    (``drop_last=False``) or drops the tail (``drop_last=True``), like
    ``DistributedSampler``. ``set_start(k)`` skips the first ``k`` indices of this rank's share.
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
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        """Begin the current epoch at position ``start`` of this rank's order."""
        self.start = start

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.length
        if self.drop_last:
            return self.length // self.world_size
        return -(-self.length // self.world_size)

    def epoch_indices(self) -> torch.Tensor:
        """This rank's full order for the current epoch."""
        if self.shuffle:
            order = torch.randperm(self.length, generator=epoch_generator(self.seed, self.epoch))
        else:
            order = torch.arange(self.length)
        if self.world_size > 1:
            total = len(self) * self.world_size
            if total > self.length:
                repeats = -(-total // max(self.length, 1))
                order = order.repeat(repeats)[:total]
            else:
                order = order[:total]
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[int]:
        order = self.epoch_indices()[self.start :]
        self.start = 0
        return iter(order.tolist())

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "start": self.start, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.start = int(state["start"])
