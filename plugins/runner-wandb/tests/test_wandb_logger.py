"""The wandb logger in offline mode, read back from W&B's own run files (wandb_files.py).

Runs go through ``python -m runner`` in a separate process: W&B starts a service process
of its own per Python process, which ends with it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from wandb_files import offline_runs

from runner import RunnerError
from runner._plugins.registry import resolve_reference
from runner.testing import CliResult, assert_entry_module_torch_free, run_cli_subprocess
from runner_wandb import plugin as wandb_plugin
from runner_wandb.components import Wandb
from runner_wandb.logger import WandbLogger, read_link

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "digits.toml"
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


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The digits recipe with the wandb logger and a checkpointer, in an empty directory."""
    pytest.importorskip("runner_datasets.plugin")
    pytest.importorskip("runner_checkpoint.plugin")
    text = RECIPE.read_text(encoding="utf-8").replace("log_every = 10", "log_every = 4")
    text += '\n[[loggers]]\nname = "wandb"\nlog_model = true\n\n[checkpoint]\nname = "default"\n'
    (tmp_path / "digits.toml").write_text(text, encoding="utf-8")
    (tmp_path / "stop.py").write_text(STOP_PLUGIN, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def runner(workdir: Path, *args: str, **env: str) -> CliResult:
    """``runner ARGS`` in ``workdir``, W&B's files and settings kept inside it."""
    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("WANDB_")}
    environ.update(
        HOME=str(workdir / "home"),  # no ~/.netrc login, no ~/.config/wandb settings
        WANDB_DATA_DIR=str(workdir / "wandb-data"),
        WANDB_CACHE_DIR=str(workdir / "wandb-cache"),
        WANDB_CONFIG_DIR=str(workdir / "wandb-config"),
        **env,
    )
    return run_cli_subprocess(*args, cwd=workdir, env=environ, timeout=600)


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow  # trains in a new process, starting W&B's service
def test_an_offline_run_holds_config_metrics_summary_and_model(workdir: Path) -> None:
    result = runner(workdir, "run", "digits.toml", "-o", "run.max_steps=12", "--run-dir", "run", "--no-progress")
    assert result.returncode == 0, result.stderr
    run_dir = workdir / "run"
    link = read_link(run_dir)
    assert link["mode"] == "offline" and link["project"] == "digits" and link["url"] == ""
    files = Path("run") / link["dir"]
    assert files.parent == Path("run/wandb") and files.name.startswith("offline-run-")
    assert f"wandb: offline run in {files}; upload it with: wandb sync {files}\n" in result.stderr

    (offline,) = offline_runs(run_dir)
    assert offline.run.run_id == link["id"]
    assert offline.run.project == "digits" and offline.run.display_name == "run"
    assert offline.config["optimizer"]["lr"] == 0.02 and offline.config["model"]["hidden"] == [256]
    assert offline.config["run"]["max_steps"] == 12

    logged = records(run_dir)
    train = [r for r in logged if r["stage"] == "train"]
    assert offline.metric("train/loss") == [(r["step"], pytest.approx(r["loss"])) for r in train]
    assert [step for step, _ in offline.metric("train/lr")] == [4, 8, 12]
    val = [r for r in logged if r["stage"] == "val"]
    assert offline.metric("val/main/accuracy") == [(r["step"], pytest.approx(r["accuracy"])) for r in val]
    test = [r for r in logged if r["stage"] == "test"]
    assert offline.summary["test/main/loss"] == pytest.approx(test[-1]["loss"])
    assert offline.summary["runner/status"] == "finished"
    assert offline.summary["runner/global_step"] == 12 and offline.summary["runner/epochs"] == 1
    assert offline.exit_code == 0

    (artifact,) = offline.artifacts
    assert artifact.type == "model" and artifact.name == f"{link['id']}-model"
    assert "final" in artifact.aliases
    assert "model.safetensors" in {entry.path for entry in artifact.manifest.contents}
    assert json.loads(artifact.metadata)["global_step"] == 12


@pytest.mark.slow  # trains twice in new processes
def test_a_resumed_run_continues_the_same_wandb_run(workdir: Path) -> None:
    stop = ("-p", "stop.py", "-o", 'callbacks=[{name = "stop_at_6"}]', "-o", "run.max_steps=12")
    first = runner(workdir, "run", "digits.toml", *stop, "--run-dir", "run", "--no-progress")
    assert first.returncode == 130, first.stderr
    resumed = runner(workdir, "resume", "run", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    before, after = offline_runs(workdir / "run")
    assert before.run.run_id == after.run.run_id == read_link(workdir / "run")["id"]
    assert before.summary["runner/status"] == "interrupted" and before.exit_code == 130
    assert before.summary["runner/global_step"] == 6
    assert after.summary["runner/status"] == "finished" and after.exit_code == 0
    assert [step for step, _ in before.metric("train/loss")] == [4]
    assert [step for step, _ in after.metric("train/loss")] == [8, 12]  # from the checkpoint at step 6 on
    assert not before.artifacts and len(after.artifacts) == 1  # the model of the finished run only


@pytest.mark.slow  # starts a new process
def test_an_online_run_without_a_login_fails_before_training(workdir: Path) -> None:
    result = runner(workdir, "run", "digits.toml", "-o", "loggers.0.mode=online", "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: wandb: cannot start a W&B run (online): "), lines
    assert lines[0].endswith("; log in with 'wandb login' or set mode = 'offline'")
    assert not (workdir / "runs").exists() or not list((workdir / "runs").iterdir())  # no crashed run


def test_a_wrong_wandb_mode_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(RunnerError, match=r"^wandb: WANDB_MODE='sometimes' is not one of online, offline, disabled$"):
        WandbLogger(tmp_path)


@pytest.mark.slow  # starts processes
def test_conformance_and_light_entry_module(runner_tester: Any) -> None:
    assert_entry_module_torch_free("runner_wandb.plugin", also=("wandb", "runner_wandb.components"))
    component = runner_tester.plugin_manager(wandb_plugin).registry.get("logger", "wandb")
    assert component.factory_ref == "runner_wandb.components:Wandb" and component.params is None
    assert resolve_reference(component.factory_ref) is Wandb
    assert component.summary == " ".join((Wandb.__doc__ or "").split())
    assert {"mode", "project", "log_model", "log_config"} <= set(component.schema.fields)
