"""Recipe parameters of the samplers (torch-free). ``__resumable__`` tells recipe validation,
without importing torch, that the sampler implements the state protocol."""

from __future__ import annotations

from typing import ClassVar

import attrs

from runner import at_least, param


@attrs.define
class DistributedParams:
    """Resumable sampler sharded over the ranks of the run (helios ResumableDistributedSampler)."""

    __resumable__: ClassVar[bool] = True

    shuffle: bool | None = param(None, doc="Shuffle every epoch (default: the loader's shuffle).")
    drop_last: bool = param(False, doc="Drop the tail that does not divide by the world size instead of padding.")


@attrs.define
class WeightedParams:
    """Draws samples with probabilities proportional to weights, with replacement, seeded per epoch."""

    __resumable__: ClassVar[bool] = True

    weights: list[float] = param([], doc="One weight per sample (or use class_weights).")
    class_weights: list[float] = param([], doc="One weight per class; labels are read from label_field.")
    label_field: int = param(-1, doc="Field of each sample holding its integer label (class_weights only).")
    num_samples: int | None = param(None, doc="Draws per epoch (default: the dataset length).", check=at_least(1))
    replacement: bool = param(True, doc="Draw with replacement (false: each sample at most once per epoch).")


@attrs.define
class BucketByLengthParams:
    """Batch sampler grouping samples of similar length (less padding), resumable by batch."""

    __resumable__: ClassVar[bool] = True

    length_field: int = param(0, doc="Field whose first dimension is the sample's length.")
    pool_batches: int = param(50, doc="Batches per pool: samples are sorted by length within pools.", check=at_least(1))
    shuffle: bool | None = param(None, doc="Shuffle samples and batch order every epoch (default: loader's shuffle).")
    drop_last: bool | None = param(None, doc="Drop the last incomplete batch (default: the loader's drop_last).")
