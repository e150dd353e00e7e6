"""The samplers, each declared once (torch-free: ``build`` imports :mod:`runner_samplers.samplers`).

``__resumable__`` tells recipe validation, without importing torch, that the sampler
implements the state protocol. Besides the dataset and the loader seed, ``build`` asks
for the loader's settings it defaults to (``loader_shuffle``, ``loader_drop_last``,
``batch_size``) and for the ranks to shard over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from runner import at_least, check, component, param

if TYPE_CHECKING:
    from runner import BuildContext, ResumableSampler
    from runner_samplers import samplers


@component
class Distributed:
    """Resumable sampler sharded over the ranks of the run (helios ResumableDistributedSampler)."""

    __resumable__: ClassVar[bool] = True

    shuffle: bool | None = param(None, doc="Shuffle every epoch (default: the loader's shuffle).")
    drop_last: bool = param(False, doc="Drop the tail that does not divide by the world size instead of padding.")

    def build(
        self, dataset: Any, seed: int, ctx: BuildContext | None = None, loader_shuffle: bool = False
    ) -> ResumableSampler:
        """A :class:`runner.ResumableSampler` over the run's ranks (``ctx.rank``/``ctx.world_size``)."""
        from runner import ResumableSampler

        return ResumableSampler(
            len(dataset),
            shuffle=loader_shuffle if self.shuffle is None else self.shuffle,
            seed=seed,
            rank=ctx.rank if ctx is not None else 0,
            world_size=ctx.world_size if ctx is not None else 1,
            drop_last=self.drop_last,
        )


@component
class Weighted:
    """Draws samples with probabilities proportional to weights, with replacement, seeded per epoch."""

    __resumable__: ClassVar[bool] = True

    weights: list[float] = param([], doc="One weight per sample (or use class_weights).")
    class_weights: list[float] = param([], doc="One weight per class; labels are read from label_field.")
    label_field: int = param(-1, doc="Field of each sample holding its integer label (class_weights only).")
    num_samples: int | None = param(None, doc="Draws per epoch (default: the dataset length).", check=at_least(1))
    replacement: bool = param(True, doc="Draw with replacement (false: each sample at most once per epoch).")

    @check("weights", "class_weights")
    def _one_kind_of_weights(self) -> str | None:
        if self.weights and self.class_weights:
            return "set weights or class_weights, not both"
        if not self.weights and not self.class_weights:
            return "set weights (one per sample) or class_weights (one per class)"
        return None

    def build(self, dataset: Any, seed: int, rank: int = 0, world_size: int = 1) -> samplers.WeightedSampler:
        from runner_samplers import samplers

        return samplers.WeightedSampler(
            samplers.sample_weights(dataset, self.weights, self.class_weights, self.label_field),
            num_samples=self.num_samples,
            replacement=self.replacement,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )


@component
class BucketByLength:
    """Batch sampler grouping samples of similar length (less padding), resumable by batch."""

    __resumable__: ClassVar[bool] = True

    length_field: int = param(0, doc="Field whose first dimension is the sample's length.")
    pool_batches: int = param(50, doc="Batches per pool: samples are sorted by length within pools.", check=at_least(1))
    shuffle: bool | None = param(None, doc="Shuffle samples and batch order every epoch (default: loader's shuffle).")
    drop_last: bool | None = param(None, doc="Drop the last incomplete batch (default: the loader's drop_last).")

    def build(
        self,
        dataset: Any,
        seed: int,
        batch_size: int = 1,
        rank: int = 0,
        world_size: int = 1,
        loader_shuffle: bool = False,
        loader_drop_last: bool = False,
    ) -> samplers.BucketByLength:
        from runner_samplers import samplers

        return samplers.BucketByLength(
            samplers.sample_lengths(dataset, self.length_field),
            batch_size=batch_size,
            pool_batches=self.pool_batches,
            shuffle=loader_shuffle if self.shuffle is None else self.shuffle,
            drop_last=loader_drop_last if self.drop_last is None else self.drop_last,
            seed=seed,
            rank=rank,
            world_size=world_size,
        )
