"""Continuing a run from its run directory alone (issue 14 item 5), through the real CLI in
this process: the printed hint resumes with the command line's overrides and -p plugins,
and the finished metrics.jsonl equals an uninterrupted run's with the same overrides."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from ckpt_helpers import (  # noqa: F401 (fixtures)
    PLUGIN,
    Cli,
    cli_fixture,
    isolate_process_state,
    run_main,
    write_recipe,
)

pytestmark = pytest.mark.slow  # each test trains three or four short runs

#: The overrides the reporter lost: a shorter run (the scheduler is built for its length).
OVERRIDES = ("-o", "run.epochs=2")
#: Ctrl-C after optimizer step 8 (the resumed run starts after it: the callback stays quiet).
CTRL_C = ("-o", 'callbacks=[{name = "ckpt_counter"}, {name = "ckpt_signal", at_step = 8, signum = "SIGINT"}]')


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recipe, plugin and overrides, never interrupted; its -p file is gone after."""
    root = tmp_path_factory.mktemp("uninterrupted")
    recipe = write_recipe(root / "recipe.toml", plugins=None)
    plugin = root / "src" / PLUGIN.name
    plugin.parent.mkdir()
    shutil.copy(PLUGIN, plugin)
    assert run_main("run", recipe, "-p", plugin, *OVERRIDES, "--run-dir", root / "run", "--no-progress") == 0
    plugin.unlink()
    return root / "run"


@pytest.fixture
def local_plugin(tmp_path: Path) -> Path:
    """A -p plugin file of the test's own, deleted by the test once the run has copied it."""
    path = tmp_path / "src" / PLUGIN.name
    path.parent.mkdir()
    shutil.copy(PLUGIN, path)
    return path


def test_the_printed_hint_resumes_with_the_original_command_line(
    cli: Cli, tmp_path: Path, uninterrupted: Path, local_plugin: Path
) -> None:
    recipe = write_recipe(tmp_path / "recipe.toml", plugins=None)
    run_dir = tmp_path / "run"
    result = cli("run", recipe, "-p", local_plugin, *OVERRIDES, *CTRL_C, "--run-dir", run_dir, "--no-progress")
    assert result.code == 130, result.err
    hint = f"runner resume {run_dir}"
    assert "received SIGINT: finishing the current step, then stopping (Ctrl-C again stops at once); " in result.err
    assert f"continue later with: {hint}\n" in result.err  # the core, when the signal arrives
    assert f"stopping. Continue with: {hint}\n" in result.err  # runner-checkpoint, once saved
    assert result.out.endswith(f"continue with {hint} -> {run_dir}\n")

    saved = json.loads((run_dir / "command.json").read_text(encoding="utf-8"))
    assert saved["resume"] == hint
    assert saved["commands"][0]["overrides"] == [OVERRIDES[1], CTRL_C[1]]
    assert saved["commands"][0]["plugins"][0]["file"] == f"plugins/{PLUGIN.name}"
    local_plugin.unlink()  # the run directory's copy is what continues the run

    # The recipe alone is a different run now: the schedule was built for 2 epochs.
    refused = cli("run", recipe, "-p", PLUGIN, "--run-dir", run_dir, "--resume", "--no-progress")
    assert refused.code == 2
    assert "! run.epochs: 2 -> 3  (breaks exact resume: changes the learning-rate schedule)" in refused.err
    assert f"continue with the run's own recipe and plugins: {hint}" in refused.err

    resumed = cli(*shlex.split(hint)[1:])  # exactly what was printed
    assert resumed.code == 0, resumed.err
    assert "resumed from" in resumed.err and "step-000008" in resumed.err
    assert "changed since" not in resumed.err  # nothing differs from the interrupted run
    assert (run_dir / "metrics.jsonl").read_bytes() == (uninterrupted / "metrics.jsonl").read_bytes()
    assert len(json.loads((run_dir / "command.json").read_text(encoding="utf-8"))["commands"]) == 2


def test_resume_run_dir_starts_a_fresh_directory_then_continues_it(
    cli: Cli, tmp_path: Path, uninterrupted: Path
) -> None:
    """A preemptible job's one command line: the first start, then every restart."""
    recipe = write_recipe(tmp_path / "recipe.toml", plugins=None)
    run_dir = tmp_path / "runs" / "job"
    command = ("run", recipe, "-p", PLUGIN, *OVERRIDES, *CTRL_C, "--resume", run_dir, "--no-progress")
    first = cli(*command)
    assert first.code == 130, first.err
    assert f"no checkpoint in {run_dir} yet: starting from the beginning" in first.err
    again = cli(*command)
    assert again.code == 0, again.err
    assert "resumed from" in again.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (uninterrupted / "metrics.jsonl").read_bytes()


def test_the_saved_recipe_reruns_a_run_that_used_a_p_plugin(
    cli: Cli, tmp_path: Path, uninterrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runner run RUN_DIR/recipe.toml`` from elsewhere, the run's -p file gone (deleted
    by the fixture): the saved recipe lists the copy in the run directory."""
    run_dir = tmp_path / "copy"
    shutil.copytree(uninterrupted, run_dir)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rerun = cli("run", run_dir / "recipe.toml", "--run-dir", "again", "--no-progress")
    assert rerun.code == 0, rerun.err
    assert (elsewhere / "again" / "metrics.jsonl").read_bytes() == (uninterrupted / "metrics.jsonl").read_bytes()
    assert (elsewhere / "again" / "recipe.toml").read_text(encoding="utf-8") == (
        uninterrupted / "recipe.toml"
    ).read_text(encoding="utf-8")
