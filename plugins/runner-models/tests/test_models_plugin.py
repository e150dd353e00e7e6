"""The plugin contract: torch-free entry module, entry point, params matching factories, conformance."""

from __future__ import annotations

import inspect
import subprocess
import sys
from importlib import metadata
from typing import Any

import attrs
import pytest

from runner._contract.params import REQUIRED
from runner._plugins.registry import RUNTIME_ARGS, resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
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
        found[name] = {"factory": factory, "params_ref": params, "params": resolve_reference(params), "doc": doc}

    HOOKS[kind](register=register)
    return found


def all_components() -> list[tuple[str, str]]:
    return [(kind, name) for kind, names in EXPECTED.items() for name in names]


def normalised(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_entry_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, runner_models.plugin\n"
        "heavy = [m for m in ('torch', 'numpy', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("models") == "runner_models.plugin"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_registers_expected_names_lazily_with_docs(kind: str) -> None:
    components = registered(kind)
    assert sorted(components) == EXPECTED[kind]
    for entry in components.values():
        # Factories and parameter classes are lazy references: the entry module builds no class.
        assert isinstance(entry["factory"], str) and isinstance(entry["params_ref"], str)
        assert attrs.has(entry["params"]) and (entry["doc"] or entry["params"].__doc__)


@pytest.mark.parametrize(("kind", "name"), all_components())
def test_params_match_the_factory_signature(kind: str, name: str) -> None:
    """The engine calls factory(**validated_params, **runtime): names and defaults must agree."""
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


def test_schedulers_ask_for_the_runtime_arguments_they_use() -> None:
    for name, entry in registered("scheduler").items():
        signature = inspect.signature(resolve_reference(entry["factory"])).parameters
        assert "optimizer" in signature, name
        assert ("total_steps" in signature) == (name in {"cosine", "linear_warmup"}), name


def test_schema_rejects_bad_values() -> None:
    mlp = schema_from_attrs(registered("model")["mlp"]["params"]).fields
    _, issues = check_table({"hidden": [0, 8], "dropout": 1.0, "activation": "elu"}, mlp)
    assert {path[0] for path, _ in issues} == {"hidden", "dropout", "activation"}
    cnn = schema_from_attrs(registered("model")["cnn"]["params"]).fields
    _, issues = check_table({"image_size": [8, 8, 8]}, cnn)
    assert [path for path, _ in issues] == [("image_size",)]
    adamw = schema_from_attrs(registered("optimizer")["adamw"]["params"]).fields
    converted, issues = check_table({"betas": [0.9, 0.95]}, adamw)
    assert not issues and converted["betas"] == (0.9, 0.95)
    _, issues = check_table({"betas": [0.9, 1.5]}, adamw)
    assert [path for path, _ in issues] == [("betas",)]
    step = schema_from_attrs(registered("scheduler")["step"]["params"]).fields
    _, issues = check_table({}, step)
    assert [path for path, _ in issues] == [("step_size",)]


class FakeDataset:
    meta = {"in_features": 64, "num_classes": 10, "in_channels": 1, "image_size": [8, 8]}


def test_conformance(runner_tester: Any) -> None:
    assert runner_tester.check_components(plugin, EXAMPLES, train_dataset=FakeDataset()) == []
