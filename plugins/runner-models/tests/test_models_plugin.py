"""The plugin contract: torch-free entry module, entry point, components declared once, conformance."""

from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any

import attrs
import pytest

from runner import RecipeError
from runner._plugins.registry import RUNTIME_ARGS, resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_models import plugin

EXPECTED = {
    "model": ["cnn", "mlp", "rnn"],
    "task": ["classification", "regression"],
    "optimizer": ["adam", "adamw", "sgd"],
    "scheduler": ["constant", "cosine", "linear_warmup", "step"],
}
HOOKS = {
    "model": plugin.register_models,
    "task": plugin.register_tasks,
    "optimizer": plugin.register_optimizers,
    "scheduler": plugin.register_schedulers,
}
EXAMPLES = {("scheduler", "step"): {"step_size": 2}, ("scheduler", "linear_warmup"): {"warmup_steps": 2}}


def registered(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def register(name: str, factory: Any, *, params: type | None = None, doc: str | None = None) -> None:
        assert name not in found, f"{kind} {name} registered twice"
        found[name] = {"ref": factory, "params": params, "doc": doc, "declaration": resolve_reference(factory)}

    HOOKS[kind](register=register)
    return found


def all_components() -> list[tuple[str, str]]:
    return [(kind, name) for kind, names in EXPECTED.items() for name in names]


@pytest.mark.slow  # starts processes
def test_entry_module_imports_no_heavy_library() -> None:
    assert_entry_module_torch_free("runner_models.plugin", also=("numpy", "sklearn"))


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("models") == "runner_models.plugin"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_registers_one_lazy_declaration_per_component(kind: str) -> None:
    components = registered(kind)
    assert sorted(components) == EXPECTED[kind]
    for entry in components.values():
        # A lazy reference and nothing else: the entry module builds no class, and the
        # declaration's docstring is the component's documentation.
        assert isinstance(entry["ref"], str) and entry["params"] is None and entry["doc"] is None
        assert attrs.has(entry["declaration"]) and entry["declaration"].__doc__


@pytest.mark.parametrize(("kind", "name"), all_components())
def test_build_asks_only_for_runtime_arguments_of_its_kind(kind: str, name: str) -> None:
    build = inspect.signature(registered(kind)[name]["declaration"].build).parameters
    assert set(build) - {"self"} <= RUNTIME_ARGS.get(kind, frozenset()) | {"ctx"}


def test_schedulers_ask_for_the_runtime_arguments_they_use() -> None:
    for name, entry in registered("scheduler").items():
        signature = inspect.signature(entry["declaration"].build).parameters
        assert "optimizer" in signature, name
        assert ("total_steps" in signature) == (name in {"cosine", "linear_warmup"}), name


def test_schema_rejects_bad_values() -> None:
    mlp = schema_from_attrs(registered("model")["mlp"]["declaration"]).fields
    _, issues = check_table({"hidden": [0, 8], "dropout": 1.0, "activation": "elu"}, mlp)
    assert {path[0] for path, _ in issues} == {"hidden", "dropout", "activation"}
    cnn = schema_from_attrs(registered("model")["cnn"]["declaration"]).fields
    _, issues = check_table({"image_size": [8, 8, 8]}, cnn)
    assert [path for path, _ in issues] == [("image_size",)]
    adamw = schema_from_attrs(registered("optimizer")["adamw"]["declaration"]).fields
    converted, issues = check_table({"betas": [0.9, 0.95]}, adamw)
    assert not issues and converted["betas"] == (0.9, 0.95)
    _, issues = check_table({"betas": [0.9, 1.5]}, adamw)
    assert [path for path, _ in issues] == [("betas",)]
    step = schema_from_attrs(registered("scheduler")["step"]["declaration"]).fields
    _, issues = check_table({}, step)
    assert [path for path, _ in issues] == [("step_size",)]


class FakeDataset:
    meta = {"in_features": 64, "num_classes": 10, "in_channels": 1, "image_size": [8, 8]}


def test_conformance(runner_tester: Any) -> None:
    assert runner_tester.check_components(plugin, EXAMPLES, train_dataset=FakeDataset()) == []


RECIPE = """
[run]
max_steps = 1

[data.train]
dataset = { name = "synthetic", split = "train", num_samples = 8 }

[model]
name = "mlp"
num_classes = 2
out_features = 3

[task]
name = "classification"

[optimizer]
name = "sgd"
nesterov = true
"""


def test_recipe_check_relates_parameters(runner_tester: Any) -> None:
    import runner_datasets.plugin

    with pytest.raises(RecipeError) as caught:
        runner_tester.recipe(RECIPE, plugin, runner_datasets.plugin)
    assert [(p.path, p.message, p.line) for p in caught.value.problems] == [
        ("model.num_classes", "set num_classes or out_features, not both (2 != 3)", 10),
        ("optimizer.nesterov", "nesterov = true needs momentum > 0, found momentum = 0.0", 18),
    ]
