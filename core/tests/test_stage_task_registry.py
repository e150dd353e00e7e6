"""Small core types: stages, the task contract, components and the registry."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from runner import Stage, StepInfo, StepOutput, Task, param
from runner._contract.errors import PluginError, Problem, RecipeError
from runner._contract.registration import PluginInfo
from runner._contract.suggest import close_matches, did_you_mean
from runner._plugins.catalog import install_hint
from runner._plugins.registry import Component, Registry, UnknownComponentError, resolve_reference

PLUGIN = PluginInfo("demo", "runner-demo", "1.0")

# -- Stage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "stage"),
    [
        ("train", Stage.TRAIN),
        ("training", Stage.TRAIN),
        ("val", Stage.VAL),
        ("valid", Stage.VAL),
        ("validation", Stage.VAL),
        ("test", Stage.TEST),
        ("testing", Stage.TEST),
        (" Validation ", Stage.VAL),
        ("TRAIN", Stage.TRAIN),
    ],
)
def test_stage_from_str_accepts_aliases(label: str, stage: Stage) -> None:
    assert Stage.from_str(label) is stage


@pytest.mark.parametrize("label", ["eval", "dev", "", "trains"])
def test_stage_from_str_rejects_others_listing_the_valid_spellings(label: str) -> None:
    with pytest.raises(ValueError) as caught:
        Stage.from_str(label)
    assert str(caught.value) == (
        f"unknown split {label!r}; expected one of: test, testing, train, training, val, valid, validation"
    )


def test_stage_is_its_string_value() -> None:
    assert str(Stage.VAL) == "val" and Stage.VAL == "val" and f"{Stage.TEST}" == "test"


# -- Task ------------------------------------------------------------------------------


class Echo(Task):
    def train_step(self, model: Any, batch: Any, step: StepInfo) -> StepOutput:
        return StepOutput(loss=None, metrics={"stage": 0.0}, outputs=("train", batch))

    def val_step(self, model: Any, batch: Any, step: StepInfo) -> StepOutput:
        return StepOutput(outputs=("val", batch))


def test_forward_dispatches_on_stage_and_test_defaults_to_val() -> None:
    task = Echo()
    assert [task.forward(stage, None, 1, StepInfo(stage)).outputs[0] for stage in Stage] == ["train", "val", "val"]


def test_a_task_must_implement_its_steps() -> None:
    with pytest.raises(NotImplementedError, match="Task must implement train_step"):
        Task().train_step(None, None, StepInfo(Stage.TRAIN))


def test_step_output_defaults() -> None:
    out = StepOutput()
    assert (out.loss, out.metrics, out.count, out.outputs) == (None, {}, 1, ())
    assert StepOutput().metrics is not out.metrics


# -- components ------------------------------------------------------------------------


@attrs.define
class WidthParams:
    """Layer widths."""

    width: int = param(4)


def factory(width: int, seed: int, ctx: Any = None) -> tuple[int, int, Any]:
    return width, seed, ctx


def test_build_passes_only_the_runtime_arguments_a_factory_declares() -> None:
    component = Component("dataset", "d", factory, PLUGIN, params=WidthParams)
    assert component.build({"width": 2}, seed=5, ctx="CTX", run_dir="ignored") == (2, 5, "CTX")


def test_factory_errors_name_the_component_and_plugin() -> None:
    def broken(width: int) -> None:
        raise ValueError(f"bad width {width}")

    component = Component("model", "wide", broken, PLUGIN)
    with pytest.raises(PluginError) as caught:
        component.build({"width": 3})
    assert str(caught.value) == "model 'wide' (plugin runner-demo 1.0) failed to build: ValueError: bad width 3"


def test_lazy_factories_are_imported_on_first_use() -> None:
    component = Component("collate", "join", "os.path:join", PLUGIN)
    assert component.factory("a", "b") == "a/b"
    bad = Component("collate", "nope", "runner_no_such_module:f", PLUGIN)
    with pytest.raises(PluginError, match=r"^collate 'nope' from plugin runner-demo 1\.0: cannot import"):
        _ = bad.factory


@pytest.mark.parametrize("ref", ["os.path", ":join", "os.path:"])
def test_lazy_references_need_module_and_attribute(ref: str) -> None:
    with pytest.raises(ValueError, match=r"must look like 'package\.module:attribute'"):
        resolve_reference(ref)


def test_schema_comes_from_params_or_the_signature_without_runtime_arguments() -> None:
    assert list(Component("dataset", "d", factory, PLUGIN, params=WidthParams).schema.fields) == ["width"]
    assert list(Component("dataset", "d", factory, PLUGIN).schema.fields) == ["width"]  # seed and ctx dropped
    assert Component("dataset", "d", factory, PLUGIN, params=WidthParams).summary == "Layer widths."


# -- registry --------------------------------------------------------------------------


def test_registry_finds_components_by_kind_and_name() -> None:
    registry = Registry()
    registry.add(Component("model", "mlp", factory, PLUGIN))
    registry.add(Component("dataset", "mlp", factory, PLUGIN))  # kinds are separate namespaces
    assert registry.get("model", "mlp").kind == "model"
    assert registry.find("model", "cnn") is None
    assert registry.names("model") == ["mlp"]
    assert [c.kind for c in registry.by_plugin("demo")] == ["dataset", "model"]


def test_unknown_names_suggest_or_list() -> None:
    registry = Registry()
    registry.add(Component("model", "mlp", factory, PLUGIN))
    with pytest.raises(UnknownComponentError, match=r"^unknown model 'mpl' \(did you mean 'mlp'\?\)$"):
        registry.get("model", "mpl")
    assert registry.unknown_message("model", "resnet") == "unknown model 'resnet'; registered models: mlp"
    assert registry.unknown_message("task", "x") == "unknown task 'x'; registered tasks: none installed"


def test_registry_keeps_clashing_names_unresolved_and_rejects_unknown_kinds() -> None:
    registry = Registry()
    registry.add(Component("model", "mlp", factory, PLUGIN))
    registry.add(Component("model", "mlp", factory, PluginInfo("x", "x", "2")))
    clash = "model 'mlp' is registered by 2 plugins, runner-demo 1.0 and x 2: uninstall one, or disable it: -p no:x"
    assert (
        registry.clash("model", "mlp")
        == registry.unknown_message("model", "mlp")
        == clash + (" (or RUNNER_DISABLE_PLUGINS=x)")
    )
    assert registry.find("model", "mlp") is None and registry.names("model") == []
    with pytest.raises(PluginError, match=r"^plugin x 2 registers model 'mlp' twice$"):
        registry.add(Component("model", "mlp", factory, PluginInfo("x", "x", "2")))
    with pytest.raises(PluginError, match="unknown component kind 'widget'"):
        registry.add(Component("widget", "w", factory, PLUGIN))


def test_install_hints_for_known_distributions() -> None:
    assert install_hint("backend", "ddp") == "it is provided by runner-ddp: pip install runner-ddp"
    assert install_hint("model", "mine") == ""
    assert install_hint("dataset", "image_folder") == "it is provided by runner-vision: pip install runner-vision"
    assert install_hint("processor", "tokenize") == "it is provided by runner-hf: pip install runner-hf"


def test_did_you_mean() -> None:
    assert did_you_mean("epoch", ["epochs", "seed"]) == "did you mean 'epochs'?"
    assert did_you_mean("zzz", ["epochs"]) == ""
    assert close_matches("SHUFLE", ["shuffle", "seed"]) == ["shuffle"]  # case-insensitive fallback


# -- errors ----------------------------------------------------------------------------


def test_problems_print_as_file_line_column_path_message() -> None:
    assert str(Problem("run.epochs", "bad", "r.toml", 3, 1)) == "r.toml:3:1: run.epochs: bad"
    assert str(Problem("model", "missing", "r.toml")) == "r.toml: model: missing"
    assert str(Problem("", "TOML syntax error: x", "r.toml", 2)) == "r.toml:2: TOML syntax error: x"


def test_recipe_error_lines_end_with_the_count() -> None:
    error = RecipeError([Problem("a", "x", "f", 1, 1), Problem("b", "y", "f", 2, 1)])
    assert error.lines() == ["f:1:1: a: x", "f:2:1: b: y", "recipe invalid: 2 problems"]
    assert error.exit_code == 2
