"""Short digits runs with the mlflow logger, read back with MLflow's own client."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from runner import RunnerError, hookimpl
from runner._plugins.registry import resolve_reference
from runner.testing import assert_entry_module_torch_free
from runner.testing import run_cli as runner_cli
from runner_mlflow import plugin as mlflow_plugin
from runner_mlflow import store
from runner_mlflow.components import Mlflow
from runner_mlflow.logger import MlflowLogger, read_link

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "digits.toml"
LOGGER = '\n[[loggers]]\nname = "mlflow"\n'


@pytest.fixture(autouse=True)
def _mlflow_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Runs start in tmp_path (the default store lives in the working directory); no
    telemetry, no tracking URI or file store permission from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def digits_plugins() -> tuple[Any, ...]:
    datasets = pytest.importorskip("runner_datasets.plugin")
    models = pytest.importorskip("runner_models.plugin")
    return datasets, models, mlflow_plugin


def file_store(tmp_path: Path) -> str:
    """A recipe line logging to a file store: quicker to create than the default SQLite one."""
    return f'tracking_uri = "{tmp_path / "mlruns"}"\n'


def client_for(run_dir: Path) -> tuple[Any, str]:
    from mlflow.tracking import MlflowClient

    link = read_link(run_dir)
    return MlflowClient(tracking_uri=link["tracking_uri"]), link["run_id"]


@pytest.mark.slow  # creates the SQLite store (its tables and migrations: seconds)
def test_runs_share_one_store_that_mlflow_reads_without_settings(
    runner_tester: Any, digits_plugins: tuple[Any, ...], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER
    first = runner_tester.run(recipe, *digits_plugins, max_steps=25)
    second = runner_tester.run(recipe.replace("lr = 2e-2", "lr = 1e-2"), *digits_plugins, max_steps=5)
    assert sorted(p.name for p in tmp_path.iterdir() if "mlflow" in p.name or p.name == "mlruns") == [
        "mlflow.db",
        "mlruns",
    ]
    assert read_link(first.run_dir)["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # nothing needed to write it, nor to read it

    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")  # what `mlflow ui` reads here by default
    experiment = client.get_experiment_by_name("digits")  # the recipe's [run] name
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    assert [r.info.run_name for r in runs] == [first.run_dir.name, second.run_dir.name]
    assert [r.data.params["optimizer.lr"] for r in runs] == ["0.02", "0.01"]
    run_id = read_link(first.run_dir)["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "mlp"
    assert run.data.params["model.hidden"] == "[256]"
    assert run.data.tags["runner.run_dir"] == str(first.run_dir.resolve())

    for stage, name in (("train", "loss"), ("val", "accuracy"), ("test", "loss")):
        logged = [r for r in first.records if r["stage"] == stage]
        key = f"{stage}/{name}" if stage == "train" else f"{stage}/main/{name}"
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        assert [m.step for m in history] == [r["step"] for r in logged], key
        assert [m.value for m in history] == pytest.approx([r[name] for r in logged]), key
    assert {"train/lr", "val/main/loss", "test/main/accuracy"} <= set(run.data.metrics)

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"recipe.toml", "metrics.jsonl"} <= artifacts
    assert "final_checkpoint.txt" not in artifacts  # no [checkpoint] table
    local = Path(client.download_artifacts(run_id, "recipe.toml", str(tmp_path / "dl")))
    assert local.read_text(encoding="utf-8") == (first.run_dir / "recipe.toml").read_text(encoding="utf-8")
    assert (tmp_path / "mlruns" / experiment.experiment_id / run_id / "artifacts" / "recipe.toml").is_file()


@pytest.mark.slow  # takes seconds
def test_a_file_store_is_opened_with_mlflow_s_permission(
    runner_tester: Any, digits_plugins: tuple[Any, ...], tmp_path: Path
) -> None:
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER + file_store(tmp_path)
    outcome = runner_tester.run(recipe, *digits_plugins, max_steps=5)
    assert os.environ["MLFLOW_ALLOW_FILE_STORE"] == "true"  # set for this process: MLflow 3 asks for it
    client, run_id = client_for(outcome.run_dir)
    assert client.get_run(run_id).info.status == "FINISHED"
    assert (tmp_path / "mlruns").is_dir() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "postgresql://me:secret@db.example/runs",
            "mlflow: tracking_uri 'postgresql://me:***@db.example/runs' needs the psycopg2 database driver: "
            "pip install 'runner-mlflow[postgres]'",
        ),
        (
            "mysql+pymysql://db.example/runs",
            "mlflow: tracking_uri 'mysql+pymysql://db.example/runs' needs the pymysql database driver: "
            "pip install 'runner-mlflow[mysql]'",
        ),
    ],
)
def test_a_missing_database_driver_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str, message: str
) -> None:
    missing = {"psycopg2", "pymysql"}
    real = store._installed
    monkeypatch.setattr(store, "_installed", lambda module: module not in missing and real(module))
    with pytest.raises(RunnerError) as raised:
        MlflowLogger(tmp_path, tracking_uri=uri)
    assert str(raised.value) == message
    assert "mlflow" not in {m.split(".")[0] for m in sys.modules} or not (tmp_path / "mlflow.json").exists()


def test_sql_stores_without_sqlalchemy_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_installed", lambda module: module != "sqlalchemy")
    with pytest.raises(RunnerError) as raised:
        MlflowLogger(tmp_path)  # the default store
    assert str(raised.value) == (
        f"mlflow: tracking_uri 'sqlite:///{tmp_path / 'mlflow.db'}' is an SQL store and needs SQLAlchemy "
        "(dependencies of runner-mlflow that are missing): pip install sqlalchemy"
    )


def test_a_store_mlflow_refuses_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunnerError) as raised:
        MlflowLogger(tmp_path, tracking_uri="nosuchscheme://somewhere")
    text = str(raised.value)
    assert text.startswith("mlflow: cannot log to nosuchscheme://somewhere: ") and "\n" not in text
    assert not (tmp_path / "mlflow.json").exists()


@pytest.mark.slow  # takes seconds
def test_final_checkpoint_path_is_an_artifact(
    runner_tester: Any, digits_plugins: tuple[Any, ...], tmp_path: Path
) -> None:
    checkpoint = pytest.importorskip("runner_checkpoint.plugin")
    recipe = RECIPE.read_text(encoding="utf-8") + LOGGER + file_store(tmp_path)
    recipe += 'experiment = "ckpt"\ntags = { team = "vision" }\n\n[checkpoint]\nname = "default"\n'
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


def test_a_crashed_run_is_marked_failed(runner_tester: Any, digits_plugins: tuple[Any, ...], tmp_path: Path) -> None:
    recipe = RECIPE.read_text(encoding="utf-8").replace("log_every = 10", "log_every = 2") + LOGGER
    recipe += file_store(tmp_path)
    with pytest.raises(Exception, match="boom at step 5"):
        runner_tester.run(recipe, *digits_plugins, _Crash(), max_steps=20)
    run_dir = runner_tester.tmp_path / "run-1"
    client, run_id = client_for(run_dir)
    assert client.get_run(run_id).info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [2, 4]


STOP_PLUGIN = """
import signal

from runner import hookimpl


class Stop:
    def on_end_train_step(self, global_step):
        if global_step == 6:
            signal.raise_signal(signal.SIGINT)


@hookimpl
def register_callbacks(register):
    register("stop_at_6", Stop)
"""


def run_cli(*args: str | Path) -> int:
    return runner_cli(*args).exit_code


@pytest.mark.slow  # trains twice through the CLI
def test_a_resumed_run_continues_its_mlflow_run(tmp_path: Path) -> None:
    pytest.importorskip("runner_checkpoint.plugin")
    pytest.importorskip("runner_datasets.plugin")
    (tmp_path / "stop.py").write_text(STOP_PLUGIN, encoding="utf-8")
    recipe = tmp_path / "digits.toml"
    text = RECIPE.read_text(encoding="utf-8").replace("log_every = 10", "log_every = 2")
    recipe.write_text(text + LOGGER + file_store(tmp_path) + '\n[checkpoint]\nname = "default"\n', encoding="utf-8")
    stop = ("-p", "stop.py", "-o", 'callbacks=[{name = "stop_at_6"}]', "-o", "run.max_steps=10")
    assert run_cli("run", recipe, *stop, "--run-dir", "ck", "--no-progress") == 130
    client, run_id = client_for(tmp_path / "ck")
    assert client.get_run(run_id).info.status == "KILLED"
    assert run_cli("resume", "ck", "--no-progress") == 0
    assert read_link(tmp_path / "ck")["run_id"] == run_id  # the same MLflow run, not a second one
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1
    steps = sorted({m.step for m in client.get_metric_history(run_id, "train/loss")})
    assert steps == [2, 4, 6, 8, 10]


@pytest.mark.slow  # starts processes
def test_conformance_and_torch_free_entry_module(runner_tester: Any) -> None:
    assert_entry_module_torch_free("runner_mlflow.plugin", also=("mlflow", "runner_mlflow.components"))
    component = runner_tester.plugin_manager(mlflow_plugin).registry.get("logger", "mlflow")
    assert component.factory_ref == "runner_mlflow.components:Mlflow" and component.params is None
    assert resolve_reference(component.factory_ref) is Mlflow
    assert component.summary == " ".join((Mlflow.__doc__ or "").split())
    assert "tracking_uri" in component.schema.fields and "experiment" in component.schema.fields
