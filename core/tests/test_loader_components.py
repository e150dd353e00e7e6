"""Loader components (``register_loaders``): a split's loader table chooses one by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
from core_helpers import TOY, check_recipe, recipe_problems

from runner import hookimpl, param
from runner._contract.context import BuildContext
from runner._contract.registration import PluginInfo
from runner._contract.stage import Stage
from runner._data.build import build_dataset, build_loader, make_loader
from runner._data.module import RecipeDataModule
from runner._plugins.manager import PluginManager


@attrs.define
class EchoParams:
    """Builds the dataset itself and counts its instances."""

    tag: str = param("x", doc="A parameter of the component.")


class EchoPlugin:
    built: list[dict[str, Any]] = []

    @hookimpl
    def register_loaders(self, register: Any) -> None:
        register("echo", EchoPlugin.factory, params=EchoParams)

    @staticmethod
    def factory(tag: str, *, split: Any, registry: Any, ctx: Any, train: bool, loader_config: Any, **rest: Any) -> Any:
        EchoPlugin.built.append({"tag": tag, "train": train, **rest})
        dataset = registry.get("dataset", split.dataset.name).build(split.dataset.params, ctx=ctx)
        loader = make_loader(dataset, loader_config, ctx=ctx, train=train)
        loader.tag = tag  # type: ignore[union-attr]
        loader.closed = False  # type: ignore[union-attr]

        def close() -> None:
            loader.closed = True  # type: ignore[union-attr]

        loader.close = close  # type: ignore[union-attr]
        return loader


NAMED = TOY.replace(
    "loader = { batch_size = 8, shuffle = true }", 'loader = { name = "echo", tag = "t", batch_size = 8 }'
)


@pytest.fixture
def manager(toy_manager: PluginManager) -> PluginManager:
    toy_manager.add(EchoPlugin(), PluginInfo("echo", "echo", "0"))
    return toy_manager


def test_named_loader_builds_the_dataset_and_the_loader(manager: PluginManager, tmp_path: Path) -> None:
    recipe = check_recipe(NAMED, manager, tmp_path)
    split = recipe.train
    assert split is not None and split.loader_component is not None
    assert split.loader_component.params == {"tag": "t"} and split.loader.batch_size == 8
    assert recipe.resolved["data"]["train"]["loader"]["name"] == "echo"
    ctx = BuildContext(recipe=recipe, seed=0, run_dir=tmp_path)
    assert build_dataset(split, manager.registry, ctx) is None
    EchoPlugin.built.clear()
    loader = build_loader(split, None, manager.registry, ctx, train=True, on_cuda=False)
    assert loader.tag == "t" and len(loader) == 8  # type: ignore[attr-defined]
    assert EchoPlugin.built[0]["collate"] is None and EchoPlugin.built[0]["sampler_factory"] is None

    module = RecipeDataModule(recipe)
    module.bind(ctx, manager.registry)
    module.setup(Stage.TRAIN)
    assert ctx.train_dataset is module.train_dataloader().dataset
    module.teardown()
    assert module.train_dataloader().closed


def test_named_loader_keys_are_checked(manager: PluginManager, tmp_path: Path) -> None:
    bad = NAMED.replace('tag = "t"', "tag = 3, bogus = 1")
    problems = "\n".join(recipe_problems(bad, manager, tmp_path))
    assert "bogus" in problems and "tag" in problems
    unknown = NAMED.replace('name = "echo"', 'name = "ecko"')
    assert "unknown loader 'ecko'" in "\n".join(recipe_problems(unknown, manager, tmp_path))
