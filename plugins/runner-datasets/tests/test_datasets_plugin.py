"""The plugin contract: torch-free entry module, entry point, components declared once, conformance."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any

import attrs
import pytest

from runner import RecipeError, hookimpl
from runner._plugins.registry import resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_datasets import plugin

DATASETS = [
    "arrow_shards",
    "concat",
    "csv",
    "digits",
    "generator",
    "jsonl",
    "list",
    "processed",
    "random_split",
    "sequences",
    "subset",
    "synthetic",
    "tensors",
]
TRANSFORMS = ["map", "normalize", "prefetch", "random_noise", "shuffle_buffer"]


def registered(hook: str = "register_datasets") -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def register(name: str, factory: Any, *, params: type | None = None, doc: str | None = None) -> None:
        assert name not in found, f"{name} registered twice"
        found[name] = {"ref": factory, "params": params, "doc": doc, "declaration": resolve_reference(factory)}

    getattr(plugin, hook)(register=register)
    return found


@pytest.mark.slow  # starts processes
def test_entry_module_imports_no_heavy_library() -> None:
    assert_entry_module_torch_free(
        "runner_datasets.plugin", also=("numpy", "sklearn"), imports=["runner_datasets.components"]
    )


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("datasets") == "runner_datasets.plugin"


def test_registers_one_lazy_declaration_per_component() -> None:
    datasets, transforms = registered(), registered("register_transforms")
    assert sorted(datasets) == DATASETS and sorted(transforms) == TRANSFORMS
    for entry in [*datasets.values(), *transforms.values()]:
        # A lazy reference and nothing else: the entry module builds no class, and the
        # declaration's docstring is the component's documentation.
        assert isinstance(entry["ref"], str) and entry["params"] is None and entry["doc"] is None
        assert attrs.has(entry["declaration"]) and entry["declaration"].__doc__
    for name in ("digits", "synthetic", "sequences"):
        assert schema_from_attrs(datasets[name]["declaration"]).fields["split"].required


def test_recipe_tables_are_validated_by_the_schema() -> None:
    fields = registered()["digits"]["declaration"]
    schema = schema_from_attrs(fields).fields
    converted, issues = check_table({"split": "train", "val_fraction": 0.2}, schema)
    assert not issues
    assert converted == {"split": "train", "val_fraction": 0.2, "test_fraction": 0.15, "split_seed": 0, "flatten": True}
    _, issues = check_table({"split": "trian", "val_fraction": 1.5}, schema)
    assert {path for path, _ in issues} == {("split",), ("val_fraction",)}
    assert any("expected one of" in message and "validation" in message for _, message in issues)
    _, issues = check_table({}, schema)
    assert issues == [(("split",), "missing required key (expected str)")]


def test_synthetic_schema_rejects_bad_sizes() -> None:
    schema = schema_from_attrs(registered()["synthetic"]["declaration"]).fields
    _, issues = check_table({"split": "val", "num_classes": 1, "noise": -0.5, "task": "regresion"}, schema)
    assert {path for path, _ in issues} == {("num_classes",), ("noise",), ("task",)}


def test_conformance(runner_tester: Any, tmp_path: Any) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(4, 2), "y": torch.arange(4)}, str(tmp_path / "t.safetensors"))
    (tmp_path / "t.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    (tmp_path / "t.jsonl").write_text('{"a": 1, "label": 0}\n')
    from runner_datasets.arrow_shards import write_shards

    write_shards(tmp_path / "shards", [{"x": torch.zeros(4, 2).numpy(), "y": [0, 1, 0, 1]}], rows_per_shard=3)
    digits = {"name": "digits", "split": "train"}
    examples = {
        ("dataset", "arrow_shards"): {"path": [str(tmp_path / "shards")]},
        ("dataset", "digits"): {"split": "val"},
        ("dataset", "synthetic"): {"split": "test"},
        ("dataset", "sequences"): {"split": "val", "num_samples": 20},
        ("dataset", "tensors"): {"path": str(tmp_path / "t.safetensors")},
        ("dataset", "csv"): {"path": str(tmp_path / "t.csv"), "label": "label"},
        ("dataset", "jsonl"): {"path": str(tmp_path / "t.jsonl"), "features": ["a"], "label": "label"},
        ("dataset", "list"): {"items": [1, 2, 3]},
        ("dataset", "generator"): {"producer": "count", "kwargs": {"n": 3}, "length": 3},
        ("dataset", "concat"): {"datasets": [digits, digits]},
        ("dataset", "subset"): {"dataset": digits, "stop": 10},
        ("dataset", "random_split"): {"dataset": digits, "fractions": [0.5, 0.5], "part": "val"},
        ("transform", "normalize"): {"mean": [0.5], "std": [0.25]},
        ("transform", "map"): {"fn": "keep"},
    }
    problems = runner_tester.check_components(plugin, examples, with_plugins=(sys.modules[__name__],))
    # processed: needs a processed output, exercised in test_sources.py with a real cache.
    assert [p for p in problems if "'processed'" not in p] == []


# Functions the examples name (this module is loaded as a plugin next to runner-datasets).


def count(n: int) -> range:
    return range(n)


def keep(sample: Any, rng: Any) -> Any:
    return sample


@hookimpl
def register_functions(register: Any) -> None:
    register("count", count)
    register("keep", keep)


RECIPE = """
[run]
max_steps = 1

[data.train]
dataset = { name = "digits", split = "train", val_fraction = 0.5, test_fraction = 0.5 }

[model]
name = "mlp"

[task]
name = "classification"

[optimizer]
name = "sgd"
"""


def test_recipe_check_wants_training_data_left_by_the_digits_split(runner_tester: Any) -> None:
    import runner_models.plugin

    with pytest.raises(RecipeError) as caught:
        runner_tester.recipe(RECIPE, plugin, runner_models.plugin)
    assert [(p.path, p.message, p.line) for p in caught.value.problems] == [
        (
            "data.train.dataset.val_fraction",
            "val_fraction + test_fraction must be below 1 to leave training data, found 0.5 + 0.5",
            6,
        )
    ]
