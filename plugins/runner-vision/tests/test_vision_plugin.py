"""The plugin contract: torch-free entry module, entry point, params matching factories, conformance."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pytest

from runner._contract.params import REQUIRED
from runner._plugins.registry import RUNTIME_ARGS, resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
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
        found[name] = {"factory": factory, "params_ref": params, "params": resolve_reference(params), "doc": doc}

    HOOKS[kind](register=register)
    return found


def normalised(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_entry_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, runner_vision.plugin, runner_vision.params\n"
        "heavy = [m for m in ('torch', 'torchvision', 'numpy', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("vision") == "runner_vision.plugin"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_registers_expected_names_lazily_with_docs(kind: str) -> None:
    components = registered(kind)
    assert sorted(components) == EXPECTED[kind]
    for entry in components.values():
        assert isinstance(entry["factory"], str) and isinstance(entry["params_ref"], str)
        assert attrs.has(entry["params"]) and entry["doc"]


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k, names in EXPECTED.items() for n in names])
def test_params_match_the_factory_signature(kind: str, name: str) -> None:
    entry = registered(kind)[name]
    schema = schema_from_attrs(entry["params"])
    signature = inspect.signature(resolve_reference(entry["factory"])).parameters
    runtime = RUNTIME_ARGS.get(kind, frozenset()) | {"ctx"}
    accepted = {k: p for k, p in signature.items() if k not in runtime}
    assert set(schema.fields) == set(accepted)
    for field in schema.fields.values():
        default = accepted[field.name].default
        expected = REQUIRED if default is inspect.Parameter.empty else normalised(default)
        assert normalised(field.default) == expected, field.name


def test_schema_rejects_bad_values() -> None:
    fields = schema_from_attrs(registered("transform")["torchvision"]["params"]).fields
    _, issues = check_table({"transforms": [{"name": "Lambda"}]}, fields)
    assert [path for path, _ in issues] == [("transforms",)] and "unknown transform 'Lambda'" in issues[0][1]
    _, issues = check_table({"transforms": []}, fields)
    assert "at least one transform" in issues[0][1]
    resnet = schema_from_attrs(registered("model")["resnet"]["params"]).fields
    _, issues = check_table({"size": 19, "freeze": "everything"}, resnet)
    assert {path[0] for path, _ in issues} == {"size", "freeze"}
    folder = schema_from_attrs(registered("dataset")["image_folder"]["params"]).fields
    _, issues = check_table({"root": "x", "image_size": [1, 2, 3]}, folder)
    assert [path for path, _ in issues] == [("image_size",)]


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
