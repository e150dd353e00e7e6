"""Resume through the real CLI, in this process: fallback from damaged checkpoints,
explicit paths, provenance checks, and preemption signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from ckpt_helpers import (  # noqa: F401 (fixtures)
    Cli,
    Result,
    cli_fixture,
    finish,
    isolate_process_state,
    records,
    run_main,
    spawn,
    write_recipe,
)

from runner_checkpoint.manifest import seal


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run that saved checkpoints (the last two are kept: steps 36 and 39)."""
    root = tmp_path_factory.mktemp("baseline")
    recipe = write_recipe(root / "recipe.toml")
    assert run_main("run", recipe, "--run-dir", root / "run", "--no-progress") == 0
    names = sorted(p.name for p in (root / "run" / "checkpoints").iterdir())
    assert names == ["latest", "step-000036", "step-000039"]
    return root


def copy_run(baseline: Path, tmp_path: Path) -> tuple[Path, Path]:
    run_dir = tmp_path / "run"
    shutil.copytree(baseline / "run", run_dir)
    return baseline / "recipe.toml", run_dir


def truncate(directory: Path) -> str:
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return "model.safetensors: size expected"


def flip_bit(directory: Path) -> str:
    path = directory / "state.safetensors"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    return "state.safetensors: sha256 expected"


def edit_manifest(directory: Path) -> str:
    path = directory / "manifest.json"
    path.write_text(path.read_text(encoding="utf-8").replace('"step": 39', '"step": 40'), encoding="utf-8")
    return "manifest.json: digest expected"


def delete_file(directory: Path) -> str:
    (directory / "state.json").unlink()
    return "state.json: missing"


def forge_manifest(directory: Path) -> str:
    """A careful forger: changes a file and rewrites its hash, but cannot re-seal without the digest."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    (directory / "state.json").write_text('{"format_version": 1, "state": {}}', encoding="utf-8")
    manifest["files"]["state.json"]["sha256"] = "0" * 64
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return "manifest.json: digest expected"


@pytest.mark.slow  # takes seconds
@pytest.mark.parametrize("damage", [truncate, flip_bit, edit_manifest, delete_file, forge_manifest])
def test_damaged_latest_is_reported_and_the_previous_one_resumes_exactly(
    cli: Cli, baseline: Path, tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    recipe, run_dir = copy_run(baseline, tmp_path)
    expected = damage(run_dir / "checkpoints" / "step-000039")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert "step-000039 is damaged" in result.err
    assert expected in result.err
    if "sha256 expected" in expected:
        assert ", actual " in result.err
    assert "falling back to" in result.err and "step-000036" in result.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()


def test_a_fully_resealed_forgery_is_still_refused(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    """Even with a recomputed digest, a tensor file that is not safetensors never loads."""
    recipe, run_dir = copy_run(baseline, tmp_path)
    directory = run_dir / "checkpoints" / "step-000039"
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    (directory / "model.safetensors").write_bytes(b"\x80\x04K\x01.")  # a pickle
    manifest["files"]["model.safetensors"] = {
        "size": 5,
        "sha256": __import__("hashlib").sha256(b"\x80\x04K\x01.").hexdigest(),
    }
    (directory / "manifest.json").write_text(json.dumps(seal(manifest)), encoding="utf-8")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert "model.safetensors: not a safetensors file" in result.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()


def test_no_valid_checkpoint_is_a_clear_error_with_exit_2(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    recipe, run_dir = copy_run(baseline, tmp_path)
    flip_bit(run_dir / "checkpoints" / "step-000039")
    delete_file(run_dir / "checkpoints" / "step-000036")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 2
    assert "error: no valid checkpoint to resume from" in result.err
    assert "step-000039:" in result.err and "step-000036:" in result.err
    assert "state.json: missing" in result.err


def test_resume_from_an_explicit_checkpoint_into_a_new_run_dir(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    source = baseline / "run" / "checkpoints" / "step-000036"
    run_dir = tmp_path / "elsewhere"
    result = cli("run", baseline / "recipe.toml", "--run-dir", run_dir, "--resume", source, "--no-progress")
    assert result.code == 0, result.err
    assert "copied the first" in result.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()


def test_an_explicit_damaged_checkpoint_is_not_replaced(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    recipe, run_dir = copy_run(baseline, tmp_path)
    target = run_dir / "checkpoints" / "step-000039"
    flip_bit(target)
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", target, "--no-progress")
    assert result.code == 2
    assert f"error: cannot resume from {target}" in result.err
    assert "state.safetensors: sha256 expected" in result.err
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", tmp_path / "nothing.pt", "--no-progress")
    assert result.code == 2 and "not a checkpoint" in result.err


def test_changed_batch_size_is_refused_with_a_diff(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    _, run_dir = copy_run(baseline, tmp_path)
    changed = write_recipe(tmp_path / "changed.toml", **{"data.train.loader.batch_size": 8, "run.epochs": 4})
    result = cli("run", changed, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 2
    assert "! data.train.loader.batch_size: 4 -> 8  (breaks exact resume)" in result.err
    schedule = "(breaks exact resume: changes the learning-rate schedule)"
    assert f"! run.epochs: 3 -> 4  {schedule}" in result.err
    assert f"! schedule.steps_per_epoch: 13 -> 7  {schedule}" in result.err
    assert f"! schedule.total_steps: 39 -> 28  {schedule}" in result.err
    assert f"continue with the run's own recipe and plugins: runner resume {run_dir}" in result.err
    assert "pass --allow-recipe-change" in result.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()

    result = cli("run", changed, "--run-dir", run_dir, "--resume", "--allow-recipe-change", "--no-progress")
    assert result.code == 0, result.err
    assert "resuming anyway" in result.err
    assert records(run_dir)[-1]["stage"] == "test"


@pytest.mark.slow  # starts processes
def test_harmless_changes_resume(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    _, run_dir = copy_run(baseline, tmp_path)
    step_36 = run_dir / "checkpoints" / "step-000036"
    other = write_recipe(
        tmp_path / "other.toml",
        **{"run.log_every": 2, "data.train.loader.num_workers": 1, "checkpoint.keep_last": 5},
    )
    result = cli("run", other, "--run-dir", run_dir, "--resume", step_36, "--no-progress")
    assert result.code == 0, result.err
    assert "run.log_every: 1 -> 2" in result.err and "(breaks" not in result.err
    train = [r for r in records(run_dir) if r["stage"] == "train"]
    assert train[-1]["step"] == 38  # logged every 2 steps from 36 on


@pytest.mark.slow  # takes seconds
def test_a_longer_run_with_a_scheduler_is_refused_unless_allowed(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    """The scheduler was built for 39 steps: 52 would splice two schedules into one run."""
    _, run_dir = copy_run(baseline, tmp_path)
    step_36 = run_dir / "checkpoints" / "step-000036"
    longer = write_recipe(tmp_path / "longer.toml", **{"run.epochs": 4})
    result = cli("run", longer, "--run-dir", run_dir, "--resume", step_36, "--no-progress")
    assert result.code == 2
    schedule = "(breaks exact resume: changes the learning-rate schedule)"
    assert f"! run.epochs: 3 -> 4  {schedule}" in result.err
    assert f"! schedule.total_steps: 39 -> 52  {schedule}" in result.err
    assert "steps_per_epoch" not in result.err  # unchanged
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()

    result = cli("run", longer, "--run-dir", run_dir, "--resume", step_36, "--allow-recipe-change", "--no-progress")
    assert result.code == 0, result.err
    assert "resuming anyway" in result.err
    train = [r for r in records(run_dir) if r["stage"] == "train"]
    assert train[-1]["step"] == 52


@pytest.mark.slow  # takes seconds
@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_saves_then_stops_cleanly_and_the_resume_is_exact(
    cli: Cli, baseline: Path, tmp_path: Path, signum: str
) -> None:
    run_dir = tmp_path / "run"
    callbacks = [{"name": "ckpt_counter"}, {"name": "ckpt_signal", "at_step": 8, "signum": signum}]
    preempted = write_recipe(tmp_path / "preempted.toml", callbacks=callbacks)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    result = cli("run", preempted, "--run-dir", run_dir, "--no-progress")
    assert result.code == 128 + getattr(signal, signum), result.err  # 143 (SIGTERM) or 130 (SIGINT)
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored
    assert f"received {signum}: saved" in result.err and "step-000008" in result.err
    assert f"stopped: {signum}: saved step-000008 at step 8" in result.out
    saved = records(run_dir)
    assert saved[-1]["step"] == 8 and all(r["stage"] != "test" for r in saved)  # no final val/test
    result = cli("run", baseline / "recipe.toml", "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert "callbacks:" in result.err  # the harmless recipe difference is shown
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()


def test_checkpoints_list_verify_show(cli: Cli, baseline: Path, tmp_path: Path) -> None:
    _, run_dir = copy_run(baseline, tmp_path)
    result = cli("checkpoints", "list", run_dir)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["NAME", "STEP", "EPOCH", "REASON", "MONITOR", "SIZE", "STATUS"]
    assert lines[1].split()[:4] == ["step-000036", "36", "2", "step"]
    assert lines[2].split()[:4] == ["step-000039", "39", "2", "end"] and lines[2].endswith("ok, latest")

    assert cli("checkpoints", run_dir).out == result.out  # shorthand for list

    result = cli("checkpoints", "show", run_dir)
    assert result.code == 0, result.err
    assert "checkpoint " in result.out and "step-000039" in result.out
    assert "runner-checkpoint" in result.out and "ckpt_plugin.py local" in result.out
    assert "[data.train.loader]" in result.out or "batch_size = 4" in result.out

    assert cli("checkpoints", "verify", run_dir).code == 0
    flip_bit(run_dir / "checkpoints" / "step-000036")
    (run_dir / "checkpoints" / "step-000039" / "notes.txt").write_text("hi", encoding="utf-8")
    result = cli("checkpoints", "verify", run_dir)
    assert result.code == 1
    assert "step-000036: DAMAGED" in result.out and "state.safetensors: sha256 expected" in result.out
    assert "step-000039: ok" in result.out and "not in the manifest (never loaded): notes.txt" in result.out
    result = cli("checkpoints", "list", run_dir)
    assert "DAMAGED" in result.out


# -- what is no regular file is damage, never something to wait on ---------------------


def bounded(*args: str | Path, timeout: float = 120) -> Result:
    """``runner ARGS`` as a separate process, killed (and the test failed) if it outlives
    ``timeout``: a regression that blocks on a FIFO fails instead of hanging the suite."""
    process = spawn(*args)
    try:
        return finish(process, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"runner {' '.join(map(str, args))} still ran after {timeout} s (blocked?)")


def make_fifo(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    os.mkfifo(path)


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("file", ["manifest.json", "model.safetensors", "state.json", "provenance.json"])
def test_a_fifo_in_a_checkpoint_is_reported_as_damage(baseline: Path, tmp_path: Path, file: str) -> None:
    _, run_dir = copy_run(baseline, tmp_path)
    make_fifo(run_dir / "checkpoints" / "step-000039" / file)
    problem = f"{file} is not a regular file (fifo)"

    verified = bounded("checkpoints", "verify", run_dir, timeout=60)
    assert verified.code == 1, verified.err
    assert f"step-000039: DAMAGED\n  {problem}\n" in verified.out and "step-000036: ok" in verified.out

    listed = bounded("checkpoints", "list", run_dir, timeout=60)
    assert listed.code == 0, listed.err
    assert "DAMAGED, latest" in listed.out and f"step-000039: {problem}" in listed.err

    if file == "manifest.json":  # the other files are checked the same way by the same code
        fast = bounded("checkpoints", "list", "--fast", run_dir, timeout=60)
        assert fast.code == 0 and f"step-000039: {problem}" in fast.err
        shown = bounded("checkpoints", "show", run_dir / "checkpoints" / "step-000039", timeout=60)
        assert shown.code == 2 and shown.err.strip().endswith(problem), shown.err
    if file == "provenance.json":
        shown = bounded("checkpoints", "show", run_dir / "checkpoints" / "step-000039", "--json", timeout=60)
        assert shown.code == 2 and problem in shown.err, shown.err


@pytest.mark.slow
def test_resume_skips_a_checkpoint_whose_manifest_is_a_fifo(baseline: Path, tmp_path: Path) -> None:
    recipe, run_dir = copy_run(baseline, tmp_path)
    make_fifo(run_dir / "checkpoints" / "step-000039" / "manifest.json")
    result = bounded("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert "step-000039 is damaged and is skipped" in result.err
    assert "manifest.json is not a regular file (fifo)" in result.err
    assert "falling back to" in result.err and "step-000036" in result.err
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_latest_that_is_no_file_falls_back_with_one_warning(baseline: Path, tmp_path: Path, kind: str) -> None:
    recipe, run_dir = copy_run(baseline, tmp_path)
    checkpoints = run_dir / "checkpoints"
    latest = checkpoints / "latest"
    latest.unlink()
    if kind == "directory":
        latest.mkdir()
    else:
        os.mkfifo(latest)
    listed = bounded("checkpoints", "list", run_dir, timeout=60)
    assert listed.code == 0 and "ok, latest" not in listed.out  # nothing is marked latest

    result = bounded("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    # The slow-loading warning is the machine's, not the checkpointer's: ckpt_plugin.py imports
    # torch, which takes over its 3 s on a loaded CI machine.
    lines = [line for line in result.err.splitlines() if not line.startswith("warning: loading plugins took ")]
    warnings = [line for line in lines if "warning" in line]
    moved = checkpoints / "damaged" / "latest"
    assert warnings == [
        f"checkpoint: warning: {latest} is not a regular file ({kind}); moved it to {moved}; "
        "trying every checkpoint, newest first"
    ]
    assert f"resumed from {checkpoints / 'step-000039'}" in result.err
    assert latest.read_text(encoding="utf-8") == "step-000039\n"  # a pointer again
    assert sorted(p.name for p in checkpoints.iterdir()) == ["damaged", "latest", "step-000036", "step-000039"]


# -- retention after a fallback ---------------------------------------------------------------


def test_damaged_checkpoints_are_moved_aside_and_never_push_out_good_ones(
    cli: Cli, baseline: Path, tmp_path: Path
) -> None:
    """keep_last = 2 with step-000036 and a damaged step-000039: resuming from 36 and saving
    again at 39 must keep 36 and the new 39 (not 39-2 beside the damaged one, with 36 pruned)."""
    recipe, run_dir = copy_run(baseline, tmp_path)
    checkpoints = run_dir / "checkpoints"
    flip_bit(checkpoints / "step-000039")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert sorted(p.name for p in checkpoints.iterdir()) == ["damaged", "latest", "step-000036", "step-000039"]
    moved = checkpoints / "damaged" / "step-000039"
    assert f"checkpoint: moved damaged step-000039 to {moved} (retention ignores it there" in result.err
    assert [p.name for p in (checkpoints / "damaged").iterdir()] == ["step-000039"]
    assert (checkpoints / "latest").read_text(encoding="utf-8") == "step-000039\n"
    verified = cli("checkpoints", "verify", run_dir)
    assert verified.code == 0, verified.out
    assert verified.out.splitlines() == ["step-000036: ok (4 files verified)", "step-000039: ok (4 files verified)"]
    assert (run_dir / "metrics.jsonl").read_bytes() == (baseline / "run" / "metrics.jsonl").read_bytes()

    # A second damaged step-000039 does not overwrite the first one set aside.
    flip_bit(checkpoints / "step-000039")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert sorted(p.name for p in (checkpoints / "damaged").iterdir()) == ["step-000039", "step-000039-2"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["damaged", "latest", "step-000036", "step-000039"]
