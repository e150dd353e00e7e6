"""A short digits run with the tensorboard logger, read back with TensorBoard's own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner._plugins.registry import resolve_reference
from runner.testing import assert_entry_module_torch_free
from runner_tensorboard import plugin as tensorboard_plugin
from runner_tensorboard.components import TensorBoard

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "digits.toml"
LOGGER = '\n[[loggers]]\nname = "tensorboard"\n'


@pytest.fixture
def digits_plugins() -> tuple[Any, ...]:
    datasets = pytest.importorskip("runner_datasets.plugin")
    models = pytest.importorskip("runner_models.plugin")
    return datasets, models, tensorboard_plugin


def accumulate(log_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow  # takes seconds
def test_event_files_hold_the_logged_metrics(runner_tester: Any, digits_plugins: tuple[Any, ...]) -> None:
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER
    outcome = runner_tester.run(recipe, *digits_plugins, max_steps=25)
    assert list(outcome.run_dir.glob("events.out.tfevents.*")), sorted(outcome.run_dir.iterdir())
    events = accumulate(outcome.run_dir)
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/accuracy", "train/lr", "val/main/loss", "val/main/accuracy"} <= scalars
    assert {"test/main/accuracy", "test/main/loss"} <= scalars

    for stage, name in (("train", "loss"), ("val", "accuracy"), ("test", "loss")):
        logged = [r for r in outcome.records if r["stage"] == stage]
        tag = f"{stage}/{name}" if stage == "train" else f"{stage}/main/{name}"
        read = events.Scalars(tag)
        assert [e.step for e in read] == [r["step"] for r in logged], tag
        assert [e.value for e in read] == pytest.approx([r[name] for r in logged], rel=1e-6), tag


def test_recipe_text_and_hyperparameters(runner_tester: Any, digits_plugins: tuple[Any, ...]) -> None:
    from tensorboard.plugins.hparams import plugin_data_pb2

    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER
    outcome = runner_tester.run(recipe, *digits_plugins, max_steps=5, overrides=("optimizer.lr=0.005",))
    events = accumulate(outcome.run_dir)
    text = events.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "[model]" in text and 'name = "mlp"' in text and "lr = 0.005" in text

    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optimizer.lr"].number_value == pytest.approx(0.005)
    assert hparams["model.name"].string_value == "mlp"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert "val/main/accuracy" in {m.name.tag for m in experiment.metric_infos}


@pytest.mark.slow  # takes seconds
def test_log_dir_parameter(runner_tester: Any, digits_plugins: tuple[Any, ...]) -> None:
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER + 'log_dir = "tb"\nhparams = false\nrecipe_text = false\n'
    outcome = runner_tester.run(recipe, *digits_plugins, max_steps=10)  # log_every = 10
    assert not list(outcome.run_dir.glob("events.out.tfevents.*"))
    events = accumulate(outcome.run_dir / "tb")
    assert "train/loss" in events.Tags()["scalars"]
    assert events.Tags()["tensors"] == []


@pytest.mark.slow  # starts processes
def test_conformance_and_torch_free_entry_module(runner_tester: Any, tmp_path: Path) -> None:
    assert_entry_module_torch_free("runner_tensorboard.plugin", also=("tensorboard", "runner_tensorboard.components"))
    manager = runner_tester.plugin_manager(tensorboard_plugin)
    component = manager.registry.get("logger", "tensorboard")
    assert component.factory_ref == "runner_tensorboard.components:TensorBoard" and component.params is None
    assert resolve_reference(component.factory_ref) is TensorBoard
    assert component.summary == " ".join((TensorBoard.__doc__ or "").split())
    assert set(component.schema.fields) == {"log_dir", "hparams", "recipe_text", "flush_secs"}
