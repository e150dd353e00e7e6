"""A short digits run with the mlflow logger, read back with MLflow's own client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import hookimpl
from runner._plugins.registry import resolve_reference
from runner_mlflow import plugin as mlflow_plugin
from runner_mlflow.components import Mlflow
from runner_mlflow.logger import read_link

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "digits.toml"
LOGGER = '\n[[loggers]]\nname = "mlflow"\n'


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file store per run directory, and no telemetry."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def digits_plugins() -> tuple[Any, ...]:
    datasets = pytest.importorskip("runner_datasets.plugin")
    models = pytest.importorskip("runner_models.plugin")
    return datasets, models, mlflow_plugin


def client_for(run_dir: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    link = read_link(run_dir)
    return MlflowClient(tracking_uri=link["tracking_uri"]), link["run_id"]


def test_store_holds_params_metrics_and_artifacts(
    runner_tester: Any, digits_plugins: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # the logger opts in to the file store itself
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER
    outcome = runner_tester.run(recipe, *digits_plugins, max_steps=25)
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert (outcome.run_dir / "mlruns").is_dir()
    client, run_id = client_for(outcome.run_dir)
    assert read_link(outcome.run_dir)["tracking_uri"] == (outcome.run_dir / "mlruns").resolve().as_uri()

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == outcome.run_dir.name
    assert client.get_experiment(run.info.experiment_id).name == "digits"  # the recipe's [run] name
    assert run.data.params["optimizer.lr"] == "0.02"
    assert run.data.params["model.name"] == "mlp"
    assert run.data.params["model.hidden"] == "[256]"
    assert run.data.tags["runner.run_dir"] == str(outcome.run_dir.resolve())

    for stage, name in (("train", "loss"), ("val", "accuracy"), ("test", "loss")):
        logged = [r for r in outcome.records if r["stage"] == stage]
        key = f"{stage}/{name}" if stage == "train" else f"{stage}/main/{name}"
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [r["step"] for r in logged], key
        assert [m.value for m in history] == pytest.approx([r[name] for r in logged]), key
    assert {"train/lr", "val/main/loss", "test/main/accuracy"} <= set(run.data.metrics)

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"recipe.toml", "metrics.jsonl"} <= artifacts
    assert "final_checkpoint.txt" not in artifacts  # no [checkpoint] table
    local = Path(client.download_artifacts(run_id, "recipe.toml", str(outcome.run_dir / "dl")))
    assert local.read_text(encoding="utf-8") == (outcome.run_dir / "recipe.toml").read_text(encoding="utf-8")


def test_final_checkpoint_path_is_an_artifact(runner_tester: Any, digits_plugins: tuple[Any, ...]) -> None:
    checkpoint = pytest.importorskip("runner_checkpoint.plugin")
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER + 'experiment = "ckpt"\ntags = { team = "vision" }\n'
    recipe += '\n[checkpoint]\nname = "default"\n'
    outcome = runner_tester.run(recipe, *digits_plugins, checkpoint, max_steps=5)
    client, run_id = client_for(outcome.run_dir)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "ckpt"
    assert run.data.tags["team"] == "vision"
    latest = (outcome.run_dir / "checkpoints" / "latest").read_text(encoding="utf-8").strip()
    expected = str((outcome.run_dir / "checkpoints" / latest).resolve())
    assert run.data.tags["runner.checkpoint"] == expected
    note = Path(client.download_artifacts(run_id, "final_checkpoint.txt", str(outcome.run_dir / "dl")))
    assert note.read_text(encoding="utf-8").strip() == expected


class _Crash:
    """Raises after the fifth optimizer step."""

    @hookimpl
    def on_end_train_step(self, global_step: int) -> None:
        if global_step == 5:
            raise RuntimeError("boom at step 5")


def test_a_crashed_run_is_marked_failed(runner_tester: Any, digits_plugins: tuple[Any, ...]) -> None:
    recipe = RECIPE.read_text(encoding="utf-8").replace("log_every = 10", "log_every = 2") + LOGGER
    with pytest.raises(Exception, match="boom at step 5"):
        runner_tester.run(recipe, *digits_plugins, _Crash(), max_steps=20)
    run_dir = runner_tester.tmp_path / "run-1"
    client, run_id = client_for(run_dir)
    assert client.get_run(run_id).info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [2, 4]


def test_conformance_and_torch_free_entry_module(runner_tester: Any) -> None:
    code = (
        "import sys, runner_mlflow.plugin\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow')], 'heavy import'\n"
        "assert 'runner_mlflow.components' not in sys.modules, 'components imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    component = runner_tester.plugin_manager(mlflow_plugin).registry.get("logger", "mlflow")
    assert component.factory_ref == "runner_mlflow.components:Mlflow" and component.params is None
    assert resolve_reference(component.factory_ref) is Mlflow
    assert component.summary == " ".join((Mlflow.__doc__ or "").split())
    assert "tracking_uri" in component.schema.fields and "experiment" in component.schema.fields
