"""The plugin contract: torch-free entry module, entry point, components declared once, rules, conformance."""

from __future__ import annotations

import inspect
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pytest

from runner import RecipeError, RunnerError
from runner._contract.declaration import is_declaration
from runner._plugins.registry import RUNTIME_ARGS, resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_vision import plugin

EXPECTED = {
    "dataset": ["cifar10", "cifar100", "fashion_mnist", "image_folder", "mnist"],
    "transform": ["torchvision"],
    "model": ["efficientnet", "resnet", "vit"],
}
HOOKS = {
    "dataset": plugin.register_datasets,
    "transform": plugin.register_transforms,
    "model": plugin.register_models,
}


def registered(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def register(name: str, factory: Any, *, params: Any = None, doc: str | None = None) -> None:
        assert name not in found, f"{kind} {name} registered twice"
        found[name] = {"ref": factory, "params": params, "doc": doc, "declaration": resolve_reference(factory)}

    HOOKS[kind](register=register)
    return found


def all_components() -> list[tuple[str, str]]:
    return [(kind, name) for kind, names in EXPECTED.items() for name in names]


@pytest.mark.slow  # starts processes
def test_entry_module_imports_no_heavy_library() -> None:
    assert_entry_module_torch_free(
        "runner_vision.plugin", also=("torchvision", "numpy", "PIL"), imports=["runner_vision.components"]
    )


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("vision") == "runner_vision.plugin"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_registers_one_lazy_declaration_per_component(kind: str) -> None:
    components = registered(kind)
    assert sorted(components) == EXPECTED[kind]
    for entry in components.values():
        # A lazy reference and nothing else: the declaration's docstring is the documentation.
        assert isinstance(entry["ref"], str) and entry["params"] is None and entry["doc"] is None
        assert is_declaration(entry["declaration"]) and entry["declaration"].__doc__


def test_every_component_and_parameter_is_documented(runner_tester: Any) -> None:
    registry = runner_tester.plugin_manager(plugin).registry
    for kind, name in all_components():
        component = registry.get(kind, name)
        assert component.deprecation is None and component.summary.endswith("."), (kind, name)
        assert all(field.doc for field in component.schema.fields.values()), (kind, name)
    assert registry.get("dataset", "cifar100").summary == (
        "CIFAR-100 from the python batches in a local folder (no download, no arbitrary unpickling)."
    )


@pytest.mark.parametrize(("kind", "name"), all_components())
def test_build_asks_only_for_runtime_arguments_of_its_kind(kind: str, name: str) -> None:
    build = inspect.signature(registered(kind)[name]["declaration"].build).parameters
    assert set(build) - {"self"} <= RUNTIME_ARGS.get(kind, frozenset()) | {"ctx"}


def test_variants_share_their_parameters_not_their_data() -> None:
    datasets = registered("dataset")
    for first, second in (("cifar10", "cifar100"), ("mnist", "fashion_mnist")):
        one, other = datasets[first]["declaration"], datasets[second]["declaration"]
        assert attrs.fields_dict(one).keys() == attrs.fields_dict(other).keys() == {"root", "split", "dtype"}
        assert (one.variant, other.variant) == (first, second)


def test_schema_rejects_bad_values() -> None:
    def fields(kind: str, name: str) -> Any:
        return schema_from_attrs(registered(kind)[name]["declaration"]).fields

    _, issues = check_table({"transforms": [{"name": "Lambda"}]}, fields("transform", "torchvision"))
    assert [path for path, _ in issues] == [("transforms",)] and "unknown transform 'Lambda'" in issues[0][1]
    _, issues = check_table({"transforms": []}, fields("transform", "torchvision"))
    assert "at least one transform" in issues[0][1]
    _, issues = check_table({"size": 19, "freeze": "everything"}, fields("model", "resnet"))
    assert {path[0] for path, _ in issues} == {"size", "freeze"}
    _, issues = check_table({"root": "x", "image_size": [1, 2, 3]}, fields("dataset", "image_folder"))
    assert [path for path, _ in issues] == [("image_size",)]
    _, issues = check_table({"split": "val"}, fields("dataset", "fashion_mnist"))
    assert {path[0] for path, _ in issues} == {"root", "split"}


RECIPE = """
[run]
max_steps = 1

[data.train]
dataset = { name = "image_folder", root = "images", image_size = 30 }

[model]
name = "vit"
image_size = 30
num_heads = 5

[task]
name = "classification"
"""


def test_recipe_check_relates_vit_dimensions(runner_tester: Any) -> None:
    import runner_models.plugin

    with pytest.raises(RecipeError) as caught:
        runner_tester.recipe(RECIPE, plugin, runner_models.plugin)
    assert [(p.path, p.message, p.line) for p in caught.value.problems] == [
        ("model.hidden_dim", "hidden_dim 768 (size b_16's) is not a multiple of num_heads 5", 8),
        ("model.image_size", "image_size 30 is not a multiple of patch_size 16 (size b_16's)", 10),
    ]
    fixed = ("model.patch_size=10", "model.num_heads=6")
    recipe, _ = runner_tester.recipe(RECIPE, plugin, runner_models.plugin, overrides=fixed)
    assert recipe.model.params["patch_size"] == 10


def test_vit_rules_run_before_building_too(runner_tester: Any) -> None:
    vit = runner_tester.plugin_manager(plugin).registry.get("model", "vit")
    with pytest.raises(RunnerError, match=r"image_size: image_size 20 is not a multiple of patch_size 8$"):
        vit.build({"image_size": 20, "patch_size": 8, "num_heads": 4, "hidden_dim": 8})


def test_conformance(runner_tester: Any, data_root: Path) -> None:
    root = str(data_root)
    examples = {
        ("dataset", "image_folder"): {"root": str(data_root / "folder")},
        ("dataset", "cifar10"): {"root": root, "split": "test"},
        ("dataset", "cifar100"): {"root": root, "split": "test"},
        ("dataset", "mnist"): {"root": root, "split": "test"},
        ("dataset", "fashion_mnist"): {"root": root, "split": "test"},
        ("transform", "torchvision"): {"transforms": [{"name": "RandomHorizontalFlip"}]},
        ("model", "vit"): {"image_size": 32, "patch_size": 8, "num_layers": 1, "num_heads": 2, "hidden_dim": 8},
    }
    assert runner_tester.check_components(plugin, examples) == []
