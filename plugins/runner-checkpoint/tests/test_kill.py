"""Real processes killed for real: SIGKILL mid-epoch, mid-validation and at random points,
SIGTERM to the whole process group (data-loader workers included), a crash inside the
checkpoint write, and ``runner verify-resume``. Each resumed run must write a
``metrics.jsonl`` identical, byte for byte, to an uninterrupted run's.

The train loader uses two worker processes (the fixture dataset has no tensor fast path).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from conftest import STEPS_PER_EPOCH, Cli, finish, records, spawn, write_recipe

from runner_checkpoint import faults
from runner_checkpoint.beacon import PROGRESS_ENV
from runner_checkpoint.verify_resume import run_and_kill

WORKERS = {"data.train.loader.num_workers": 2}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    root = tmp_path_factory.mktemp("uninterrupted")
    recipe = write_recipe(root / "recipe.toml", **WORKERS)
    result = finish(spawn("run", recipe, "--run-dir", root / "run", "--no-progress"))
    assert result.code == 0, result.err
    return (root / "run" / "metrics.jsonl").read_bytes()


def kill_points(seed: int) -> list[tuple[str, int, bool]]:
    """Five (event, step, hold) kill points at random steps, covering mid-epoch steps that are
    not checkpoint steps (so steps are replayed), a validation between its two loaders, an
    asynchronous kill while the run keeps going, and an epoch end."""
    rng = random.Random(seed)
    total = 3 * STEPS_PER_EPOCH
    mid_epoch = [s for s in range(2, total - 2) if s % 3 and s % STEPS_PER_EPOCH]
    points = [
        ("step", rng.choice(mid_epoch), True),
        ("val", rng.choice(range(5, total - 4, 5)), True),
        ("step", rng.choice(mid_epoch), False),
        ("epoch", rng.choice(range(1, total - 1)), True),
        ("step", rng.choice(mid_epoch), True),
    ]
    return sorted(points, key=lambda point: point[1])


def test_sigkill_at_five_random_points_then_resume_is_identical(
    uninterrupted: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = int(os.environ.get("RUNNER_CHECKPOINT_TEST_SEED", "20260529"))
    points = kill_points(seed)
    monkeypatch.setenv("RUNNER_PLUGINS", "checkpoint")
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    log = tmp_path / "log.txt"
    args = ["run", str(recipe), "--run-dir", str(run_dir), "--no-progress"]
    observed = []
    for index, (kind, step, hold) in enumerate(points):
        resume = ["--resume"] if index else []
        event = run_and_kill([*args, *resume], tmp_path / "progress.txt", kind, step, hold=hold, log=log, timeout=300)
        observed.append(event)
    final = finish(spawn(*args, "--resume"))
    assert final.code == 0, final.err
    assert "checkpoint: resumed from" in final.err
    assert log.read_text().count("checkpoint: resumed from") == len(points) - 1
    assert [e.split()[0] for e in observed].count("hold") == 4, observed
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted, f"seed {seed}, kills {points}: {observed}"


def test_sigterm_to_the_process_group_saves_stops_and_resumes_exactly(uninterrupted: bytes, tmp_path: Path) -> None:
    """What a scheduler's preemption does: SIGTERM to every process, workers included."""
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    progress = tmp_path / "progress.txt"
    process = spawn(
        "run", recipe, "--run-dir", run_dir, "--no-progress", env={PROGRESS_ENV: str(progress)}, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while "step 16\n" not in (progress.read_text() if progress.exists() else ""):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGTERM)
    result = finish(process)
    assert result.code == 0, result.err
    assert "received SIGTERM: saved" in result.err and "stopping" in result.err
    assert "stopped: SIGTERM: saved step-" in result.out
    assert all(r["stage"] != "test" for r in records(run_dir))
    resumed = finish(spawn("run", recipe, "--run-dir", run_dir, "--no-progress", "--resume"))
    assert resumed.code == 0, resumed.err
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted


def test_crash_inside_a_checkpoint_write_during_training(uninterrupted: bytes, tmp_path: Path) -> None:
    """SIGKILL between the rename of the 4th checkpoint and its pointer update."""
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    crashed = finish(
        spawn("run", recipe, "--run-dir", run_dir, "--no-progress", env={faults.ENV: "before_pointer_update@4"})
    )
    assert crashed.code == -signal.SIGKILL
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-000009"
    assert (run_dir / "checkpoints" / "step-000012" / "manifest.json").exists()  # renamed, never pointed to
    resumed = finish(spawn("run", recipe, "--run-dir", run_dir, "--no-progress", "--resume"))
    assert resumed.code == 0, resumed.err
    assert "resumed from" in resumed.err and "step-000009 (step 9" in resumed.err
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted


def test_verify_resume_reports_identical(cli: Cli, tmp_path: Path) -> None:
    """Mid-epoch, asynchronous kill, gradient accumulation, two workers."""
    recipe = write_recipe(
        tmp_path / "recipe.toml", **WORKERS, **{"run.grad_accum": 2, "run.epochs": 2, "checkpoint": None}
    )
    result = cli(
        "verify-resume", recipe, "--kill-at", "9", "--save-every", "2", "--parallel", "--work-dir", tmp_path / "w"
    )
    assert result.code == 0, result.out + result.err
    assert "killed after observing: step 9" in result.out
    assert "resumed from" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("identical: ")


def test_verify_resume_catches_a_plugin_that_is_not_resume_safe(cli: Cli, tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path / "recipe.toml",
        **{"run.max_steps": 10, "run.epochs": None, "callbacks": [{"name": "ckpt_leaky"}]},
    )
    result = cli("verify-resume", recipe, "--kill-at", "5", "--hold", "--parallel", "--work-dir", tmp_path / "w")
    assert result.code == 1, result.out + result.err
    assert "record 8 differs:" in result.out  # 5 train records, 2 validation records, then step 6
    assert '"leaky": 5' in result.out and '"leaky": 0' in result.out
