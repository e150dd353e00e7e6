"""The core's ``random`` and ``sequential`` sampler components (torch-free: ``build``
imports the sampler it makes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from runner._contract.declaration import component
from runner._contract.params import param

if TYPE_CHECKING:
    from runner._contract.context import BuildContext
    from runner._samplers.index import ResumableSampler


@component
class _Sampler:
    """Built-in samplers shard across ranks when the backend runs several processes."""

    shuffle: ClassVar[bool] = False
    __resumable__: ClassVar[bool] = True

    drop_last: bool = param(False, doc="When sharding, drop the tail instead of padding it.")

    def build(self, dataset: Any, seed: int, ctx: BuildContext) -> ResumableSampler:
        from runner._samplers.index import ResumableSampler

        return ResumableSampler(
            len(dataset),
            shuffle=self.shuffle,
            seed=seed,
            rank=ctx.rank,
            world_size=ctx.world_size,
            drop_last=self.drop_last,
        )


@component
class Random(_Sampler):
    """Resumable shuffled order, reseeded every epoch from (seed, epoch).

    Built-in samplers shard across ranks when the backend runs several processes.
    """

    shuffle: ClassVar[bool] = True


@component
class Sequential(_Sampler):
    """Resumable in-order sampler.

    Built-in samplers shard across ranks when the backend runs several processes.
    """
