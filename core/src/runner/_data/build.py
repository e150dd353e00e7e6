"""Build a split's dataset and loader from its recipe table (or from Python objects).

:func:`make_loader` is the one place that decides how a dataset is iterated:

- iterable datasets go through :class:`~runner._data.transforms.IterablePipeline` and
  :class:`~runner._data.loader.IterableLoader`; a source that shards itself
  (``shards_itself = True``, e.g. runner-datasets' ``arrow_shards``) skips the pipeline and
  is told its rank, world size and batch size instead (:func:`place_stream`);
- map-style datasets get a resumable sampler (the recipe's, or a built-in one following
  ``shuffle`` and the world size) and a :class:`~runner._data.loader.Loader`, which takes the
  batched fast path automatically when it is safe: the dataset exposes aligned in-memory
  ``tensors``, no collate function is set, no sample transform remains after folding, and
  the sampler computes its order by index arithmetic (``epoch_indices``/``epoch_batches``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from runner._contract.errors import RunnerError
from runner._data.loader import IterableLoader, Loader
from runner._data.reset import owners
from runner._data.transforms import IterablePipeline, Pipeline, TransformedDataset
from runner._samplers.index import ResumableSampler
from runner._samplers.protocol import is_resumable, non_resumable_message

if TYPE_CHECKING:
    from runner._contract.context import BuildContext
    from runner._contract.recipe import ComponentConfig, LoaderConfig, SplitConfig
    from runner._plugins.registry import Registry

__all__ = [
    "FoldedTensorDataset",
    "TransformedDataset",
    "build_dataset",
    "build_loader",
    "dataset_builder",
    "make_loader",
    "tensors_of",
]


class FoldedTensorDataset(torch.utils.data.Dataset[Any]):
    """In-memory tensors after foldable transforms (keeps ``meta`` and the fast path).

    ``source`` is the dataset the tensors were folded from, kept only when it (or a dataset
    it wraps) defines ``reset_state()``, which the loader still calls; otherwise it is
    dropped, so its unfolded tensors can be freed.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...], meta: dict[str, Any], source: Any = None) -> None:
        self.tensors = tensors
        self.meta = meta
        self.runner_wraps = source if any(owners(source)) else None

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)


def tensors_of(dataset: Any) -> tuple[torch.Tensor, ...] | None:
    """The dataset's aligned in-memory tensors (``dataset.tensors``), or None."""
    tensors = getattr(dataset, "tensors", None)
    if not isinstance(tensors, tuple) or not tensors:
        return None
    try:
        length = len(dataset)
    except TypeError:
        return None
    if all(isinstance(t, torch.Tensor) and t.dim() > 0 and len(t) == length for t in tensors):
        return tensors
    return None


def dataset_builder(registry: Registry, ctx: BuildContext, path: str) -> Callable[[Any, str], Any]:
    """A callable that builds a nested dataset table (combinators receive it as
    ``build_dataset``): ``build_dataset({"name": "csv", "path": ...}, "datasets[0]")``."""
    from runner._contract.recipe import ComponentConfig
    from runner._schema.check import check_table

    def build(table: Any, where: str = "dataset") -> Any:
        location = f"{path}.{where}"
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            raise RunnerError(f"{location}: expected a table with name = a registered dataset, found {table!r}")
        params = {k: v for k, v in table.items() if k != "name"}
        component = registry.get("dataset", table["name"])
        checked, issues = check_table(params, component.schema.fields, open_table=component.schema.open)
        issues += component.check_params(checked, invalid={p[0] for p, _ in issues if p})
        if issues:
            shown = "; ".join(f"{'.'.join(map(str, p)) or 'table'}: {m}" for p, m in issues)
            raise RunnerError(f"{location}: {shown}")
        nested = ComponentConfig(kind="dataset", name=table["name"], params=checked, path=location)
        return _build_component_dataset(nested, registry, ctx)

    return build


def _build_component_dataset(config: ComponentConfig, registry: Registry, ctx: BuildContext) -> Any:
    component = registry.get("dataset", config.name)
    return component.build(
        config.params,
        ctx=ctx,
        seed=ctx.seed,
        build_dataset=dataset_builder(registry, ctx, config.path),
        registry=registry,  # for registered functions (a list dataset's producer)
    )


def build_transforms(configs: tuple[ComponentConfig, ...], registry: Registry, ctx: BuildContext) -> Pipeline:
    """The split's transforms; a failure names the transform's recipe key."""
    return Pipeline.of(_build_transform(t, registry, ctx) for t in configs)


def _build_transform(config: ComponentConfig, registry: Registry, ctx: BuildContext) -> Any:
    try:
        return registry.get("transform", config.name).build(config.params, ctx=ctx, registry=registry)
    except RunnerError as exc:
        raise RunnerError(f"{config.path}: {exc}") from exc


def apply_sample_transforms(dataset: Any, pipeline: Pipeline, seed: int, where: str = "dataset") -> Any:
    """``dataset`` with the pipeline's sample transforms (folded into tensors when possible)."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        return dataset  # iterable sources get their transforms in IterablePipeline
    if pipeline.stream:
        names = ", ".join(type(t).__name__ for t in pipeline.stream)
        raise RunnerError(
            f"{where}: stream transforms ({names}) need an iterable source; "
            "a map-style dataset is shuffled by the loader (loader.shuffle = true)"
        )
    remaining = pipeline.sample
    tensors = tensors_of(dataset)
    if tensors is not None and remaining and callable(getattr(remaining[0], "fold", None)):
        folded, remaining = pipeline.fold_into(tensors)
        dataset = FoldedTensorDataset(folded, dict(getattr(dataset, "meta", {}) or {}), source=dataset)
    if remaining:
        dataset = TransformedDataset(dataset, remaining, seed)
    return dataset


def build_dataset(split: SplitConfig, registry: Registry, ctx: BuildContext) -> Any:
    """The split's dataset, with its sample transforms applied (None when the split names a
    loader component, which builds the dataset itself, e.g. in server processes)."""
    if split.loader_component is not None:
        return None
    dataset = _build_component_dataset(split.dataset, registry, ctx)
    if split.transforms:
        pipeline = build_transforms(split.transforms, registry, ctx)
        dataset = apply_sample_transforms(dataset, pipeline, _seed(split.loader, ctx), split.dataset.path)
    return dataset


def _seed(params: LoaderConfig, ctx: BuildContext) -> int:
    return params.random_seed if params.random_seed is not None else ctx.seed


def build_loader(
    split: SplitConfig, dataset: Any, registry: Registry, ctx: BuildContext, *, train: bool, on_cuda: bool
) -> Loader | IterableLoader:
    """A resumable loader for ``dataset`` following the split's loader table."""
    pipeline = build_transforms(split.transforms, registry, ctx) if split.transforms else Pipeline()
    collate = (
        registry.get("collate", split.collate.name).build(split.collate.params, ctx=ctx) if split.collate else None
    )
    sampler_factory = None
    if split.sampler is not None:
        component = registry.get("sampler", split.sampler.name)
        sampler_config = split.sampler

        def sampler_factory(**runtime: Any) -> Any:
            sampler = component.build(sampler_config.params, ctx=ctx, **runtime)
            recipe = getattr(ctx, "recipe", None)
            if getattr(recipe, "checkpoint", None) is not None and not is_resumable(sampler):
                message = non_resumable_message(sampler_config.name, component.plugin)
                raise RunnerError(f"{sampler_config.path}: {message}")
            return sampler

    if split.loader_component is not None:
        named = registry.get("loader", split.loader_component.name)
        return named.build(  # type: ignore[no-any-return]
            split.loader_component.params,
            ctx=ctx,
            split=split,
            registry=registry,
            train=train,
            on_cuda=on_cuda,
            collate=collate,
            sampler_factory=sampler_factory,
            loader_config=split.loader,
        )
    return make_loader(
        dataset,
        split.loader,
        ctx=ctx,
        train=train,
        on_cuda=on_cuda,
        sampler_factory=sampler_factory,
        collate=collate,
        pipeline=pipeline,
    )


def make_loader(
    dataset: Any,
    params: LoaderConfig | dict[str, Any] | None = None,
    *,
    ctx: BuildContext | None = None,
    train: bool = True,
    on_cuda: bool = False,
    sampler: Any = None,
    sampler_factory: Callable[..., Any] | None = None,
    collate: Callable[[list[Any]], Any] | None = None,
    transforms: list[Any] | None = None,
    pipeline: Pipeline | None = None,
) -> Loader | IterableLoader:
    """A resumable loader over ``dataset`` (helios ``create_dataloader``).

    ``params`` is a :class:`~runner._contract.recipe.LoaderConfig` or its dict form. Without a
    ``sampler`` one is chosen like helios: sharded over ranks when distributed, shuffled
    when ``shuffle`` (training loaders only), else sequential. ``transforms`` (transform
    objects) are applied here when ``dataset`` does not already carry them.
    """
    from runner._contract.recipe import LoaderConfig

    if params is None:
        params = LoaderConfig()
    elif isinstance(params, dict):
        params = LoaderConfig.from_dict(params)
    if pipeline is None:
        pipeline = Pipeline.of(transforms or [])
        if pipeline.sample and not isinstance(dataset, torch.utils.data.IterableDataset):
            dataset = apply_sample_transforms(dataset, pipeline, _loader_seed(params, ctx))
    seed = _loader_seed(params, ctx)
    rank, world_size = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    distributed = params.is_distributed if params.is_distributed is not None else world_size > 1
    if not distributed:
        rank, world_size = 0, 1
    num_workers = params.num_workers
    prefetch = params.prefetch_factor
    if pipeline.loader_options:
        num_workers = max(num_workers, int(pipeline.loader_options.get("num_workers", 0)))
        prefetch = prefetch or pipeline.loader_options.get("prefetch_factor")
    if params.debug_mode:
        num_workers, prefetch = 0, None
    pin = params.pin_memory and on_cuda

    if isinstance(dataset, torch.utils.data.IterableDataset):
        if getattr(dataset, "shards_itself", False):
            place_stream(dataset, pipeline, collate, params, seed=seed, rank=rank, world_size=world_size)
        elif not isinstance(dataset, IterablePipeline):
            dataset = IterablePipeline(
                dataset,
                sample_transforms=pipeline.sample,
                stream_transforms=pipeline.stream,
                seed=seed,
                rank=rank,
                world_size=world_size,
            )
        if isinstance(dataset, IterablePipeline):
            dataset.batch_size = params.batch_size
        return IterableLoader(
            dataset,
            batch_size=params.batch_size,
            drop_last=params.drop_last,
            collate=collate,
            num_workers=num_workers,
            pin_memory=pin,
            prefetch_factor=prefetch,
            seed=seed,
            batch_transforms=pipeline.batch,
            yields_batches=bool(getattr(dataset, "yields_batches", False)),
        )

    if sampler is None and sampler_factory is not None:
        sampler = sampler_factory(
            dataset=dataset,
            seed=seed,
            batch_size=params.batch_size,
            loader_shuffle=params.shuffle and train,
            loader_drop_last=params.drop_last,
            rank=rank,
            world_size=world_size,
        )
    if sampler is None:
        sampler = ResumableSampler(
            len(dataset),
            shuffle=params.shuffle and train,
            seed=seed,
            rank=rank,
            world_size=world_size,
            drop_last=params.drop_last and world_size > 1,
        )
    fast = (
        collate is None
        and tensors_of(dataset) is not None
        and (callable(getattr(sampler, "epoch_indices", None)) or callable(getattr(sampler, "epoch_batches", None)))
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
        prefetch_factor=prefetch,
        seed=seed,
        fast_path=fast,
        batch_transforms=pipeline.batch,
    )


def place_stream(
    dataset: Any,
    pipeline: Pipeline,
    collate: Callable[[list[Any]], Any] | None,
    params: LoaderConfig,
    *,
    seed: int,
    rank: int,
    world_size: int,
) -> None:
    """Tell an iterable source that shards itself (``shards_itself = True``) where it runs:
    ``set_shard(rank=, world_size=, batch_size=, drop_last=, seed=)``. It splits its stream
    over ranks and loader workers, skips on ``set_start``, and applies no transform of the
    pipeline but batch transforms, so sample and stream transforms are an error (as is a
    collate function when it ``yields_batches``, whole collated batches)."""
    name = type(dataset).__name__
    if pipeline.sample or pipeline.stream:
        names = ", ".join(type(t).__name__ for t in (*pipeline.sample, *pipeline.stream))
        raise RunnerError(
            f"dataset {name} shards and orders its stream itself: it takes no sample or stream transforms "
            f"({names}); use batch transforms (map with batch = true), or transform the data when writing it"
        )
    if collate is not None and getattr(dataset, "yields_batches", False):
        raise RunnerError(f"dataset {name} yields whole batches: remove the split's collate")
    set_shard = getattr(dataset, "set_shard", None)
    if callable(set_shard):
        set_shard(rank=rank, world_size=world_size, batch_size=params.batch_size, drop_last=params.drop_last, seed=seed)


def _loader_seed(params: LoaderConfig, ctx: BuildContext | None) -> int:
    if params.random_seed is not None:
        return params.random_seed
    return ctx.seed if ctx is not None else 0
