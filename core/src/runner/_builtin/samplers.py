"""Factories of the built-in resumable samplers."""

from __future__ import annotations

from typing import Any

from runner._contract.context import BuildContext
from runner._data.samplers import ResumableSampler


def random_sampler(dataset: Any, seed: int, ctx: BuildContext, drop_last: bool = False) -> ResumableSampler:
    return ResumableSampler(
        len(dataset), shuffle=True, seed=seed, rank=ctx.rank, world_size=ctx.world_size, drop_last=drop_last
    )


def sequential_sampler(dataset: Any, seed: int, ctx: BuildContext, drop_last: bool = False) -> ResumableSampler:
    return ResumableSampler(
        len(dataset), shuffle=False, seed=seed, rank=ctx.rank, world_size=ctx.world_size, drop_last=drop_last
    )
