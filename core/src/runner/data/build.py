"""Build a split's dataset and loader from its recipe table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from runner.data.loader import IterableLoader, Loader
from runner.data.samplers import ResumableSampler
from runner.errors import RunnerError

if TYPE_CHECKING:
    from runner.engine.context import BuildContext
    from runner.recipe.model import SplitConfig
    from runner.registry import Registry


class TransformedDataset(torch.utils.data.Dataset[Any]):
    """Applies transforms to each sample with an RNG keyed by (seed, epoch, index), so
    augmentations are identical whatever the number of workers and across resume."""

    def __init__(self, dataset: Any, transforms: list[Any], seed: int) -> None:
        self.dataset = dataset
        self.transforms = transforms
        self.seed = seed
        self.epoch = 0
        self.meta = getattr(dataset, "meta", {})

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample


def build_dataset(split: SplitConfig, registry: Registry, ctx: BuildContext) -> Any:
    """The split's dataset, with its transforms applied."""
    dataset = registry.get("dataset", split.dataset.name).build(split.dataset.params, ctx=ctx, seed=ctx.seed)
    if split.transforms:
        transforms = [registry.get("transform", t.name).build(t.params, ctx=ctx) for t in split.transforms]
        if isinstance(dataset, torch.utils.data.IterableDataset):
            raise RunnerError(f"{split.dataset.path}: transforms on iterable datasets are not supported yet")
        dataset = TransformedDataset(dataset, transforms, ctx.seed)
    return dataset


def build_loader(
    split: SplitConfig, dataset: Any, registry: Registry, ctx: BuildContext, *, train: bool, on_cuda: bool
) -> Loader | IterableLoader:
    """A resumable loader for ``dataset`` following the split's loader table."""
    params = split.loader
    seed = params.random_seed if params.random_seed is not None else ctx.seed
    num_workers = 0 if params.debug_mode else params.num_workers
    collate = (
        registry.get("collate", split.collate.name).build(split.collate.params, ctx=ctx) if split.collate else None
    )
    pin = params.pin_memory and on_cuda
    if isinstance(dataset, torch.utils.data.IterableDataset):
        return IterableLoader(
            dataset,
            batch_size=params.batch_size,
            drop_last=params.drop_last,
            collate=collate,
            num_workers=num_workers,
            pin_memory=pin,
        )
    distributed = params.is_distributed if params.is_distributed is not None else ctx.world_size > 1
    if split.sampler is not None:
        sampler = registry.get("sampler", split.sampler.name).build(
            split.sampler.params, ctx=ctx, dataset=dataset, seed=seed
        )
    else:
        sampler = ResumableSampler(
            len(dataset),
            shuffle=params.shuffle and train,
            seed=seed,
            rank=ctx.rank if distributed else 0,
            world_size=ctx.world_size if distributed else 1,
            drop_last=params.drop_last and distributed,
        )
    tensors = getattr(dataset, "tensors", None)
    fast = (
        collate is None
        and isinstance(sampler, ResumableSampler)
        and isinstance(tensors, tuple)
        and all(isinstance(t, torch.Tensor) and len(t) == len(dataset) for t in tensors)
    )
    return Loader(
        dataset,
        sampler,
        batch_size=params.batch_size,
        drop_last=params.drop_last,
        collate=collate,
        num_workers=num_workers,
        pin_memory=pin,
        persistent_workers=params.persistent_workers,
        prefetch_factor=None if params.debug_mode else params.prefetch_factor,
        seed=seed,
        fast_path=fast,
    )
