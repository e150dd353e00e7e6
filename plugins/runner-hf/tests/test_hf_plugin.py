"""The plugin contract: torch-free entry module, entry point, components declared once, rules, conformance."""

from __future__ import annotations

import inspect
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from runner import RecipeError, RunnerError
from runner._contract.declaration import is_declaration
from runner._plugins.registry import RUNTIME_ARGS, resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_hf import plugin
from runner_hf.processor import Tokenize

EXPECTED = {
    "dataset": ["hf_dataset", "tokenized"],
    "processor": ["tokenize"],
    "collate": ["dynamic_padding"],
    "model": ["transformer"],
    "task": ["causal_lm", "text_classification"],
}
HOOKS = {
    "dataset": plugin.register_datasets,
    "processor": plugin.register_processors,
    "collate": plugin.register_collates,
    "model": plugin.register_models,
    "task": plugin.register_tasks,
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
    heavy = ("numpy", "datasets", "tokenizers", "transformers", "pyarrow")
    assert_entry_module_torch_free("runner_hf.plugin", also=heavy, imports=["runner_hf.components"])


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("hf") == "runner_hf.plugin"


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
    assert registry.get("model", "transformer").summary == "A Hugging Face model from a local folder or a config."


@pytest.mark.parametrize(("kind", "name"), all_components())
def test_build_asks_only_for_runtime_arguments_of_its_kind(kind: str, name: str) -> None:
    build = inspect.signature(registered(kind)[name]["declaration"].build).parameters
    assert set(build) - {"self"} <= RUNTIME_ARGS.get(kind, frozenset()) | {"ctx"}


def test_schema_rejects_bad_values() -> None:
    def fields(kind: str, name: str) -> Any:
        return schema_from_attrs(registered(kind)[name]["declaration"]).fields

    _, issues = check_table({"head": "seq2seq", "num_labels": 1}, fields("model", "transformer"))
    assert {path[0] for path, _ in issues} == {"head", "num_labels"}
    _, issues = check_table({"max_length": 0}, fields("processor", "tokenize"))
    assert {path[0] for path, _ in issues} == {"tokenizer", "max_length"}
    _, issues = check_table({"pad_to_multiple_of": 0}, fields("collate", "dynamic_padding"))
    assert [path for path, _ in issues] == [("pad_to_multiple_of",)]


RECIPE = """
[run]
max_steps = 1

[data.train]
dataset = { name = "hf_dataset", path = "train.jsonl" }
collate = { name = "dynamic_padding" }

[model]
name = "transformer"
path = "saved"
config = { model_type = "bert" }

[task]
name = "text_classification"
"""


def problems(runner_tester: Any, *overrides: str, recipe: str = RECIPE) -> list[tuple[str, str, int | None]]:
    with pytest.raises(RecipeError) as caught:
        runner_tester.recipe(recipe, plugin, overrides=overrides)
    return [(p.path, p.message, p.line) for p in caught.value.problems]


def test_recipe_check_wants_exactly_one_of_path_or_config(runner_tester: Any) -> None:
    both = "set exactly one of path (a local save_pretrained folder) or config (a new model); both are set"
    assert problems(runner_tester) == [("model.path", both, 11)]
    neither = RECIPE.replace('path = "saved"\n', "").replace('config = { model_type = "bert" }\n', "")
    assert problems(runner_tester, recipe=neither) == [
        ("model.path", both.replace("both are set", "neither is set"), 9)
    ]
    recipe, _ = runner_tester.recipe(RECIPE.replace('path = "saved"\n', ""), plugin)
    assert recipe.model.params["config"] == {"model_type": "bert"}


def test_recipe_check_wants_a_model_type_in_config(runner_tester: Any) -> None:
    untyped = RECIPE.replace('path = "saved"\n', "").replace('model_type = "bert"', "hidden_size = 8")
    assert problems(runner_tester, recipe=untyped) == [("model.config", 'needs model_type (e.g. "bert", "gpt2")', 11)]


def test_transformer_rule_runs_before_building_too(runner_tester: Any) -> None:
    transformer = runner_tester.plugin_manager(plugin).registry.get("model", "transformer")
    with pytest.raises(RunnerError, match=r"path: set exactly one of path .*neither is set$"):
        transformer.build({})


@pytest.mark.slow  # takes seconds
def test_conformance(runner_tester: Any, demo: Path) -> None:
    tokenizer = str(demo / "tokenizer.json")
    Tokenize(tokenizer)  # the processor itself is covered in test_text.py
    examples = {
        ("dataset", "hf_dataset"): {"path": str(demo / "train.jsonl"), "cache_dir": str(demo.parent / "hf")},
        ("dataset", "tokenized"): {"output": "none-yet", "cache_dir": str(demo.parent / "cache")},
        ("processor", "tokenize"): {"tokenizer": tokenizer},
        ("model", "transformer"): {"config": {"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2}},
    }
    problems = runner_tester.check_components(plugin, examples)
    # tokenized needs a step's output: reported as such, everything else conforms.
    assert len(problems) == 1 and "dataset 'tokenized'" in problems[0] and "no processed output" in problems[0]
