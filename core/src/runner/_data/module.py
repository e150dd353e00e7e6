"""DataModules (helios ``DataModule``, PyMarlin ``DataInterface``): one object that
prepares data, builds the datasets of each stage and hands out their loaders.

Lifecycle, driven by the engine:

1. ``prepare_data()``: once, on the primary process, before any worker or rank exists
   (download, preprocess, fill caches). Store no state: other processes will not see it.
2. ``setup(stage)`` in every process, for ``Stage.TRAIN`` (train and val datasets) and
   ``Stage.TEST``; then ``train_dataloader()``, ``val_dataloaders()``, ``test_dataloaders()``.
3. ``teardown()`` in every process once the run has ended, successfully or not.

Plain ``[data.*]`` recipe tables are sugar for :class:`RecipeDataModule`. A registered
datamodule (``[datamodule] name = ...``) subclasses :class:`DataModule` (or only
duck-types its methods); where it provides no loader for a split the recipe's
``[data.*]`` table for that split is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner._contract.stage import Stage

if TYPE_CHECKING:
    from runner._contract.context import BuildContext
    from runner._contract.recipe import LoaderConfig, Recipe
    from runner._data.loader import IterableLoader, Loader
    from runner._plugins.registry import Registry

    AnyLoader = Loader | IterableLoader


class DataModule:
    """Base class: override ``setup`` (and optionally ``prepare_data``/``teardown``).

    In ``setup`` create loaders with :meth:`make_loader` and store them with
    :meth:`set_loader` (or override the ``*_dataloader(s)`` methods)::

        class Mine(DataModule):
            def setup(self, stage):
                if stage is Stage.TRAIN:
                    self.set_loader(Stage.TRAIN, self.make_loader(MyData("train"), {"batch_size": 32, "shuffle": True}))
                    self.set_loader(Stage.VAL, self.make_loader(MyData("val"), {"batch_size": 256}, train=False))
    """

    ctx: BuildContext | None = None
    registry: Registry | None = None
    on_cuda: bool = False

    def bind(self, ctx: BuildContext, registry: Registry, on_cuda: bool = False) -> None:
        """Called by the engine before ``setup``: where and for whom loaders are built."""
        self.ctx, self.registry, self.on_cuda = ctx, registry, on_cuda

    @property
    def loaders(self) -> dict[Stage, dict[str, Any]]:
        found: dict[Stage, dict[str, Any]] | None = self.__dict__.get("_loaders")
        if found is None:
            found = {Stage.TRAIN: {}, Stage.VAL: {}, Stage.TEST: {}}
            self.__dict__["_loaders"] = found
        return found

    def prepare_data(self) -> None:
        """Download or preprocess once, on the primary process, before workers exist."""

    def setup(self, stage: Stage) -> None:
        """Build the datasets and loaders of ``stage``."""

    def teardown(self) -> None:
        """Release resources once the run has ended."""

    def set_loader(self, stage: Stage, loader: Any, key: str = "main") -> None:
        self.loaders[stage][key] = loader

    def train_dataloader(self) -> Any:
        return self.loaders[Stage.TRAIN].get("main")

    def val_dataloaders(self) -> dict[str, Any]:
        return dict(self.loaders[Stage.VAL])

    def test_dataloaders(self) -> dict[str, Any]:
        return dict(self.loaders[Stage.TEST])

    def make_loader(
        self,
        dataset: Any,
        params: LoaderConfig | dict[str, Any] | None = None,
        *,
        train: bool = True,
        sampler: Any = None,
        collate: Any = None,
        transforms: list[Any] | None = None,
    ) -> AnyLoader:
        """A resumable loader (helios ``_create_dataset`` + ``create_dataloader``)."""
        from runner._data.build import make_loader

        if self.ctx is not None and train and self.ctx.train_dataset is None:
            self.ctx.train_dataset = dataset
        return make_loader(
            dataset,
            params,
            ctx=self.ctx,
            train=train,
            on_cuda=self.on_cuda,
            sampler=sampler,
            collate=collate,
            transforms=transforms,
        )


class RecipeDataModule(DataModule):
    """The built-in datamodule behind a recipe's ``[data.train]``, ``[data.val.*]`` and
    ``[data.test.*]`` tables."""

    def __init__(self, recipe: Recipe) -> None:
        self.recipe = recipe

    def setup(self, stage: Stage) -> None:
        from runner._data.build import build_dataset, build_loader

        assert self.ctx is not None and self.registry is not None
        ctx, registry = self.ctx, self.registry
        if stage is Stage.TRAIN and self.recipe.train is not None:
            dataset = build_dataset(self.recipe.train, registry, ctx)
            ctx.train_dataset = dataset
            loader = build_loader(self.recipe.train, dataset, registry, ctx, train=True, on_cuda=self.on_cuda)
            if dataset is None:  # a loader component builds its dataset; it may expose a proxy
                ctx.train_dataset = getattr(loader, "dataset", None)
            self.set_loader(Stage.TRAIN, loader)
        splits = {Stage.VAL: self.recipe.val, Stage.TEST: self.recipe.test}.get(stage, {})
        for key, split in splits.items():
            dataset = build_dataset(split, registry, ctx)
            self.set_loader(stage, build_loader(split, dataset, registry, ctx, train=False, on_cuda=self.on_cuda), key)

    def teardown(self) -> None:
        """Close loaders that hold resources (server processes of a loader component)."""
        for by_key in self.loaders.values():
            for loader in by_key.values():
                close = getattr(loader, "close", None)
                if callable(close):
                    close()


class CombinedDataModule(DataModule):
    """A registered datamodule first; the recipe's tables for splits it leaves empty."""

    def __init__(self, primary: Any, fallback: RecipeDataModule) -> None:
        self.primary = primary
        self.fallback = fallback

    def bind(self, ctx: BuildContext, registry: Registry, on_cuda: bool = False) -> None:
        super().bind(ctx, registry, on_cuda)
        bind = getattr(self.primary, "bind", None)
        if callable(bind):
            bind(ctx, registry, on_cuda)
        self.fallback.bind(ctx, registry, on_cuda)

    def prepare_data(self) -> None:
        _call(self.primary, "prepare_data")

    def setup(self, stage: Stage) -> None:
        _call(self.primary, "setup", stage)
        if stage is Stage.TRAIN and _call(self.primary, "train_dataloader") is None:
            self.fallback.setup(stage)
        elif stage is not Stage.TRAIN:
            getter = "val_dataloaders" if stage is Stage.VAL else "test_dataloaders"
            if not _call(self.primary, getter):
                self.fallback.setup(stage)

    def teardown(self) -> None:
        try:
            _call(self.primary, "teardown")
        finally:
            self.fallback.teardown()

    def train_dataloader(self) -> Any:
        loader = _call(self.primary, "train_dataloader")
        return loader if loader is not None else self.fallback.train_dataloader()

    def val_dataloaders(self) -> dict[str, Any]:
        return dict(_call(self.primary, "val_dataloaders") or self.fallback.val_dataloaders())

    def test_dataloaders(self) -> dict[str, Any]:
        return dict(_call(self.primary, "test_dataloaders") or self.fallback.test_dataloaders())


def _call(target: Any, method: str, *args: Any) -> Any:
    func = getattr(target, method, None)
    return func(*args) if callable(func) else None


def build_datamodule(recipe: Recipe, registry: Registry, ctx: BuildContext, on_cuda: bool = False) -> DataModule:
    """The recipe's datamodule (a registered one combined with its ``[data.*]`` tables),
    bound to ``ctx``."""
    module: DataModule = RecipeDataModule(recipe)
    if recipe.datamodule is not None:
        component = registry.get("datamodule", recipe.datamodule.name)
        primary = component.build(recipe.datamodule.params, ctx=ctx)
        module = CombinedDataModule(primary, RecipeDataModule(recipe))
    module.bind(ctx, registry, on_cuda)
    return module


def prepare(recipe: Recipe, registry: Registry, ctx: BuildContext) -> None:
    """Run the registered datamodule's ``prepare_data`` (the primary, before any rank)."""
    if recipe.datamodule is not None:
        build_datamodule(recipe, registry, ctx).prepare_data()


def prepare_primary(recipe: Recipe, plugins: Any, run_dir: Any = None) -> None:
    """Everything that runs once on the primary before ranks and workers start: the
    recipe's ``[[process]]`` steps, the ``prepare_data`` hooks, then the registered
    datamodule's ``prepare_data``."""
    from runner._contract.context import BuildContext

    if recipe.process:
        import sys

        from runner._processing import DistArgs, run_steps

        # Only the primary runs the steps here (under torchrun or srun the other ranks wait
        # in the process-group rendezvous), so it processes every shard: a share computed
        # from RANK/WORLD_SIZE would wait for shards no other rank ever processes.
        # `runner process` under a launcher is where each rank processes its share.
        def report(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        run_steps(recipe, plugins, dist=DistArgs(), report=report)
    plugins.call("prepare_data", recipe=recipe)
    if recipe.datamodule is not None:
        ctx = BuildContext(recipe=recipe, seed=recipe.run.seed, run_dir=run_dir)
        prepare(recipe, plugins.registry, ctx)
