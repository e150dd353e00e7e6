"""Exact sample accounting across ranks: unpadded evaluation shards and resuming an epoch
from its global sample index on any number of processes.

The engine's resume position is ``batch_in_epoch``, counted by each rank; with the
core's :class:`runner.ResumableSampler` sharding positions ``r, r + W, ...``
of the epoch's global order to rank ``r`` of ``W``, the first ``batch_in_epoch *
batch_size * W`` samples of that order are consumed. This module stores that *global*
position in checkpoints (the backend's ``get_state``) and, when a checkpoint is restored on
a different world size (its ``update_state``), shards the rest of the epoch over
the new ranks: nothing is skipped or repeated.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch

from runner import ResumableSampler

if TYPE_CHECKING:
    from runner import RunContext


def _global_order(sampler: ResumableSampler) -> torch.Tensor:
    """The current epoch's order before sharding."""
    whole = ResumableSampler(sampler.length, shuffle=sampler.shuffle, seed=sampler.seed)
    whole.set_epoch(sampler.epoch)
    return whole.epoch_indices()


class ResumedShard(ResumableSampler):
    """A :class:`ResumableSampler` whose epoch ``resume_epoch`` starts at global position
    ``offset``: the rest of that epoch is padded (or its tail dropped) and sharded over
    this world size like a full epoch. Other epochs are the base sampler's.
    """

    def __init__(self, base: ResumableSampler, *, epoch: int, offset: int) -> None:
        super().__init__(
            base.length,
            shuffle=base.shuffle,
            seed=base.seed,
            rank=base.rank,
            world_size=base.world_size,
            drop_last=base.drop_last,
        )
        self.epoch = epoch
        self.resume_epoch = epoch
        self.offset = max(0, min(int(offset), base.length))

    @property
    def global_offset(self) -> int:
        """Samples of the current epoch consumed before this sharding began."""
        return self.offset if self.epoch == self.resume_epoch else 0

    def __len__(self) -> int:
        if not self.global_offset:
            return super().__len__()
        remaining = self.length - self.offset
        if self.world_size == 1:
            return remaining
        return remaining // self.world_size if self.drop_last else -(-remaining // self.world_size)

    def epoch_indices(self) -> torch.Tensor:
        if not self.global_offset:
            return super().epoch_indices()
        order = _global_order(self)
        rest = order[self.offset :]
        if self.world_size == 1:
            return rest
        total = len(self) * self.world_size
        if total > len(rest):  # pad with the epoch's first samples, as a full epoch is padded
            repeats = -(-(total - len(rest)) // max(len(order), 1))
            rest = torch.cat([rest, order.repeat(repeats)])
        return rest[:total][self.rank :: self.world_size]


class EvalShard(ResumableSampler):
    """Evaluation order sharded without padding: each sample is evaluated exactly once,
    so metrics summed over ranks are those of the whole split."""

    def __init__(self, base: ResumableSampler) -> None:
        super().__init__(base.length, shuffle=base.shuffle, seed=base.seed, rank=base.rank, world_size=base.world_size)
        self.epoch = base.epoch

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))

    def epoch_indices(self) -> torch.Tensor:
        return _global_order(self)[self.rank :: self.world_size]


def _sampler(loader: Any) -> ResumableSampler | None:
    sampler = getattr(loader, "sampler", None)
    return sampler if isinstance(sampler, ResumableSampler) else None


def unpad_eval_loaders(run: RunContext) -> None:
    """Shard validation and test loaders without padding (a padded sample would count twice)."""
    for loaders in (run.val_loaders, run.test_loaders):
        for loader in loaders.values():
            sampler = _sampler(loader)
            if sampler is not None and sampler.world_size > 1 and type(sampler) is ResumableSampler:
                loader.sampler = EvalShard(sampler)


def position(run: RunContext) -> dict[str, Any] | None:
    """The train loader's position in the current epoch's global order (for checkpoints)."""
    loader = run.train_loader
    sampler = _sampler(loader)
    if sampler is None:
        return None
    offset = sampler.global_offset if isinstance(sampler, ResumedShard) else 0
    consumed = min(run.batch_in_epoch * int(loader.batch_size), len(sampler))
    return {
        "epoch": run.epoch,
        "world_size": sampler.world_size,
        "offset": offset,
        "samples": offset + consumed * sampler.world_size,
    }


def resume(run: RunContext, saved: dict[str, Any] | None) -> None:
    """After the engine restored a checkpoint: continue its epoch from the global position
    when the number of shards changed (or an earlier resume already did)."""
    if not saved:
        return
    if run.epoch_done or int(saved.get("epoch", -1)) != run.epoch:
        return
    sampler = _sampler(run.train_loader)
    same_shards = sampler is not None and int(saved["world_size"]) == sampler.world_size
    if same_shards and not int(saved.get("offset", 0)):
        return  # the engine's per-rank batch_in_epoch is exact
    if sampler is None:
        warnings.warn(
            "runner-ddp: the train sampler cannot be re-sharded, so the resumed epoch continues from each "
            "rank's batch count; samples may be skipped or repeated",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    base = ResumableSampler(
        sampler.length,
        shuffle=sampler.shuffle,
        seed=sampler.seed,
        rank=sampler.rank,
        world_size=sampler.world_size,
        drop_last=sampler.drop_last,
    )
    run.train_loader.sampler = ResumedShard(base, epoch=run.epoch, offset=int(saved["samples"]))
    run.batch_in_epoch = 0
