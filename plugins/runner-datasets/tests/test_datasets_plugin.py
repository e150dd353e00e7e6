"""The plugin contract: torch-free entry module, entry point, and params matching factories."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import metadata
from typing import Any

import attrs
import pytest

from runner.registry import resolve_reference
from runner.schema.check import check_table
from runner.schema.fields import REQUIRED, schema_from_attrs
from runner_datasets import plugin

RUNTIME = {"ctx", "seed"}


def registered() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def register(name: str, factory: Any, *, params: type | None = None, doc: str | None = None) -> None:
        assert name not in found, f"{name} registered twice"
        found[name] = {"factory": factory, "params": params, "doc": doc}

    plugin.register_datasets(register=register)
    return found


def test_entry_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, runner_datasets.plugin, runner_datasets.params\n"
        "heavy = [m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("datasets") == "runner_datasets.plugin"


def test_registers_digits_and_synthetic_lazily_with_docs() -> None:
    components = registered()
    assert sorted(components) == ["digits", "synthetic"]
    for entry in components.values():
        assert isinstance(entry["factory"], str) and attrs.has(entry["params"]) and entry["doc"]


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_params_match_the_factory_signature(name: str) -> None:
    """The engine calls factory(**validated_params): names and defaults must agree."""
    entry = registered()[name]
    schema = schema_from_attrs(entry["params"])
    signature = inspect.signature(resolve_reference(entry["factory"])).parameters
    accepted = {k: p for k, p in signature.items() if k not in RUNTIME}
    assert set(schema.fields) == set(accepted)
    for field in schema.fields.values():
        default = accepted[field.name].default
        assert field.default == (REQUIRED if default is inspect.Parameter.empty else default), field.name
    assert schema.fields["split"].required


def test_recipe_tables_are_validated_by_the_schema() -> None:
    fields = registered()["digits"]["params"]
    schema = schema_from_attrs(fields).fields
    converted, issues = check_table({"split": "train", "val_fraction": 0.2}, schema)
    assert not issues
    assert converted == {"split": "train", "val_fraction": 0.2, "test_fraction": 0.15, "split_seed": 0, "flatten": True}
    _, issues = check_table({"split": "trian", "val_fraction": 1.5}, schema)
    assert {path for path, _ in issues} == {("split",), ("val_fraction",)}
    _, issues = check_table({}, schema)
    assert issues == [(("split",), "missing required key (expected one of 'train', 'val', 'test')")]


def test_synthetic_schema_rejects_bad_sizes() -> None:
    schema = schema_from_attrs(registered()["synthetic"]["params"]).fields
    _, issues = check_table({"split": "val", "num_classes": 1, "noise": -0.5, "task": "regresion"}, schema)
    assert {path for path, _ in issues} == {("num_classes",), ("noise",), ("task",)}


def test_conformance(runner_tester: Any) -> None:
    examples = {("dataset", "digits"): {"split": "val"}, ("dataset", "synthetic"): {"split": "test"}}
    assert runner_tester.check_components(plugin, examples) == []
