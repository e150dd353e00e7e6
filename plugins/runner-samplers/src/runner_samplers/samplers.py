"""Resumable samplers. Each epoch's order is a pure function of (seed, epoch) and the
dataset, so ``set_start(k)`` resumes mid-epoch at exactly the next sample (or batch) by
index arithmetic; ``state_dict()``/``load_state_dict()`` carry (epoch, start, seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from runner import BatchIndexSampler, DataError, IndexSampler, epoch_generator, shard


def _labels(dataset: Any, field: int) -> torch.Tensor:
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and tensors and all(isinstance(t, torch.Tensor) for t in tensors):
        return tensors[field].reshape(len(dataset), -1)[:, 0].long()
    return torch.tensor([int(dataset[i][field]) for i in range(len(dataset))], dtype=torch.long)


class WeightedSampler(IndexSampler):
    """Weighted random draws (``torch.multinomial``) seeded by (seed, epoch), sharded over ranks."""

    def __init__(
        self,
        weights: Sequence[float] | torch.Tensor,
        *,
        num_samples: int | None = None,
        replacement: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size, drop_last=drop_last)
        self.weights = torch.as_tensor(weights, dtype=torch.float64)
        if self.weights.dim() != 1 or len(self.weights) == 0:
            raise DataError("weighted sampler: weights must be a non-empty list")
        if bool((self.weights < 0).any()) or float(self.weights.sum()) <= 0:
            raise DataError("weighted sampler: weights must be non-negative with a positive sum")
        self.num_samples = num_samples if num_samples is not None else len(self.weights)
        self.replacement = replacement
        if not replacement and self.num_samples > int((self.weights > 0).sum()):
            raise DataError(
                f"weighted sampler: {self.num_samples} draws without replacement but only "
                f"{int((self.weights > 0).sum())} samples have a positive weight"
            )

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.num_samples
        return self.num_samples // self.world_size if self.drop_last else -(-self.num_samples // self.world_size)

    def epoch_indices(self) -> torch.Tensor:
        generator = epoch_generator(self.seed, self.epoch)
        order = torch.multinomial(self.weights, self.num_samples, self.replacement, generator=generator)
        return shard(order, self.rank, self.world_size, self.drop_last)


def sample_weights(
    dataset: Any, weights: Sequence[float], class_weights: Sequence[float], label_field: int
) -> Sequence[float] | torch.Tensor:
    """One weight per sample: ``weights`` as given, or each sample's ``class_weights`` entry by its label."""
    if weights and class_weights:
        raise DataError("weighted sampler: set weights or class_weights, not both")
    if class_weights:
        labels = _labels(dataset, label_field)
        if int(labels.max()) >= len(class_weights) or int(labels.min()) < 0:
            raise DataError(
                f"weighted sampler: labels range over {int(labels.min())}..{int(labels.max())} "
                f"but class_weights has {len(class_weights)} entries"
            )
        return torch.as_tensor(list(class_weights), dtype=torch.float64)[labels]
    if weights:
        if len(weights) != len(dataset):
            raise DataError(f"weighted sampler: {len(weights)} weights for a dataset of {len(dataset)} samples")
        return list(weights)
    raise DataError("weighted sampler: set weights (one per sample) or class_weights (one per class)")


def sample_lengths(dataset: Any, field: int) -> list[int]:
    """Each sample's length: ``dataset.lengths`` when it has them, else ``len(sample[field])``."""
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        return [int(x) for x in lengths]
    found = []
    for i in range(len(dataset)):
        sample = dataset[i]
        value = sample[field] if isinstance(sample, (tuple, list, dict)) else sample
        found.append(len(value) if hasattr(value, "__len__") else 1)
    return found


class BucketByLength(BatchIndexSampler):
    """Batches of samples of similar length.

    Per epoch: the samples are shuffled (when ``shuffle``), cut into pools of
    ``batch_size * pool_batches``, sorted by length within each pool (stable), cut into
    batches, and the batch order is shuffled; ranks take batches round-robin (padding by
    repeating batches from the start, or dropping the tail with ``drop_last``).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int,
        pool_batches: int = 50,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(seed=seed, rank=rank, world_size=world_size)
        if batch_size < 1:
            raise DataError(f"bucket_by_length: batch_size must be at least 1, found {batch_size}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        self.batch_size = batch_size
        self.pool_batches = pool_batches
        self.shuffle = shuffle
        self.drop_last = drop_last

    def _all_batches(self) -> list[list[int]]:
        count = len(self.lengths)
        generator = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(count, generator=generator) if self.shuffle else torch.arange(count)
        pool = self.batch_size * self.pool_batches
        ordered = []
        for begin in range(0, count, pool):
            chunk = order[begin : begin + pool]
            ordered.append(chunk[torch.argsort(self.lengths[chunk], stable=True)])
        flat = torch.cat(ordered) if ordered else torch.zeros(0, dtype=torch.long)
        batches = [flat[i : i + self.batch_size].tolist() for i in range(0, count, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle and batches:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def epoch_batches(self) -> list[list[int]]:
        batches = self._all_batches()
        if self.world_size == 1:
            return batches
        picked = shard(torch.arange(len(batches)), self.rank, self.world_size, self.drop_last)
        return [batches[i] for i in picked.tolist()]

    def __len__(self) -> int:
        count = len(self.lengths)
        total = count // self.batch_size if self.drop_last else -(-count // self.batch_size)
        if self.world_size == 1:
            return total
        return total // self.world_size if self.drop_last else -(-total // self.world_size)
