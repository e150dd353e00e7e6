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
        found[name] = {"factory": factory, "params_ref": params, "params": resolve_reference(params), "doc": doc}

    HOOKS[kind](register=register)
    return found


def normalised(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_entry_module_imports_no_heavy_library() -> None:
    code = (
        "import sys, runner_hf.plugin, runner_hf.params\n"
        "heavy = ('torch', 'numpy', 'datasets', 'tokenizers', 'transformers', 'pyarrow')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_entry_point_is_declared() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("hf") == "runner_hf.plugin"


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
    fields = schema_from_attrs(registered("model")["transformer"]["params"]).fields
    _, issues = check_table({"head": "seq2seq", "num_labels": 1}, fields)
    assert {path[0] for path, _ in issues} == {"head", "num_labels"}
    tokenize = schema_from_attrs(registered("processor")["tokenize"]["params"]).fields
    _, issues = check_table({"max_length": 0}, tokenize)
    assert {path[0] for path, _ in issues} == {"tokenizer", "max_length"}


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
