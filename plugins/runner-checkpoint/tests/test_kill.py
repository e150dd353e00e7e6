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
from collections.abc import Iterator
from pathlib import Path

import forked
import pytest
from ckpt_helpers import (  # noqa: F401 (fixtures)
    ENV,
    STEPS_PER_EPOCH,
    Cli,
    cli_fixture,
    finish,
    isolate_process_state,
    records,
    spawn,
    write_recipe,
)

from runner_checkpoint import faults, verify_resume
from runner_checkpoint.beacon import PROGRESS_ENV
from runner_checkpoint.verify_resume import run_and_kill

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

#: Two epochs (26 steps), loaded by two worker processes.
WORKERS = {"data.train.loader.num_workers": 2, "run.epochs": 2}


def start(tmp: Path, *args: str | Path, env: dict[str, str] | None = None) -> forked.Forked:
    """``runner ARGS`` as a forked process (see forked.py), output in ``tmp/log.txt``."""
    full_env = {**os.environ, **ENV, **(env or {})}
    return forked.launch([str(a) for a in args], full_env, tmp / "log.txt")


class Baseline:
    """The uninterrupted run, started as soon as a test asks for it and awaited when compared."""

    def __init__(self, root: Path) -> None:
        recipe = write_recipe(root / "recipe.toml", **WORKERS)
        self.root = root
        self.run_dir = root / "run"
        self.process = start(root, "run", recipe, "--run-dir", self.run_dir, "--no-progress")
        self._metrics: bytes | None = None

    @property
    def metrics(self) -> bytes:
        if self._metrics is None:
            assert self.process.wait(300) == 0, (self.root / "log.txt").read_text()
            self._metrics = (self.run_dir / "metrics.jsonl").read_bytes()
        return self._metrics


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Baseline]:
    baseline = Baseline(tmp_path_factory.mktemp("uninterrupted"))
    yield baseline
    if baseline.process.poll() is None:
        baseline.process.kill()
        baseline.process.wait()


def kill_points(seed: int) -> list[tuple[str, int, bool]]:
    """Five (event, step, hold) kill points at random steps of a 26-step run (checkpoints every
    4 steps and at epoch ends; validation every 5 steps and at the end):

    - mid-epoch, between checkpoints (steps are replayed after the resume);
    - at the first epoch's end, after its checkpoint;
    - mid-validation: after the first of two validation loaders;
    - asynchronously, while the run keeps going (wherever the SIGKILL lands);
    - in the final validation, after training ended.
    """
    rng = random.Random(seed)
    first = rng.choice([s for s in range(2, STEPS_PER_EPOCH - 1) if s % 4])
    val = rng.choice([15, 20])
    late = rng.choice([s for s in range(val + 1, 2 * STEPS_PER_EPOCH - 2) if s % 4])
    return [
        ("step", first, True),
        ("epoch", STEPS_PER_EPOCH, True),
        ("val", val, True),
        ("step", late, False),
        ("val", 2 * STEPS_PER_EPOCH, True),
    ]


def test_sigkill_at_five_random_points_then_resume_is_identical(
    uninterrupted: Baseline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = int(os.environ.get("RUNNER_CHECKPOINT_TEST_SEED", "20260529"))
    points = kill_points(seed)
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    log = tmp_path / "log.txt"
    args = ["run", str(recipe), "--run-dir", str(run_dir), "--no-progress"]
    observed = []
    for index, (kind, step, hold) in enumerate(points):
        resume = ["--resume"] if index else []
        event = run_and_kill(
            [*args, *resume],
            tmp_path / "progress.txt",
            kind,
            step,
            hold=hold,
            log=log,
            timeout=300,
            launch=forked.launch,
        )
        observed.append(event)
    assert start(tmp_path, *args, "--resume").wait(300) == 0, log.read_text()
    assert log.read_text().count("checkpoint: resumed from") == len(points)
    assert [e.split()[0] for e in observed].count("hold") == 4, observed
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted.metrics, f"seed {seed}, kills {points}: {observed}"


def test_sigterm_to_the_process_group_saves_stops_and_resumes_exactly(uninterrupted: Baseline, tmp_path: Path) -> None:
    """What a scheduler's preemption does: SIGTERM to every process, workers included."""
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    progress = tmp_path / "progress.txt"
    args = ("run", recipe, "--run-dir", run_dir, "--no-progress")
    env = {**os.environ, **ENV, PROGRESS_ENV: str(progress)}
    process = forked.launch([str(a) for a in args], env, tmp_path / "log.txt", new_group=True)
    deadline = time.monotonic() + 300
    while "step 16\n" not in (progress.read_text() if progress.exists() else ""):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(300) == 128 + signal.SIGTERM, (tmp_path / "log.txt").read_text()
    log = (tmp_path / "log.txt").read_text()
    assert "received SIGTERM: saved" in log and "stopping" in log
    assert "stopped: SIGTERM: saved step-" in log
    assert all(r["stage"] != "test" for r in records(run_dir))
    assert start(tmp_path, *args, "--resume").wait(300) == 0
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted.metrics


def test_crash_inside_a_checkpoint_write_during_training(uninterrupted: Baseline, tmp_path: Path) -> None:
    """SIGKILL between the rename of the 4th checkpoint (step 13, the first epoch end) and its pointer update."""
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS)
    run_dir = tmp_path / "run"
    args = ("run", recipe, "--run-dir", run_dir, "--no-progress")
    crashed = start(tmp_path, *args, env={faults.ENV: "before_pointer_update@4"}).wait(300)
    assert crashed == -signal.SIGKILL
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-000012"
    assert (run_dir / "checkpoints" / "step-000013" / "manifest.json").exists()  # renamed, never pointed to
    assert start(tmp_path, *args, "--resume").wait(300) == 0
    assert "resumed from" in (log := (tmp_path / "log.txt").read_text()) and "step-000012 (step 12" in log
    assert (run_dir / "metrics.jsonl").read_bytes() == uninterrupted.metrics


def test_verify_resume_reports_identical(cli: Cli, tmp_path: Path) -> None:
    """Mid-epoch, asynchronous kill, gradient accumulation, two workers."""
    recipe = write_recipe(tmp_path / "recipe.toml", **WORKERS, **{"run.grad_accum": 2, "checkpoint": None})
    result = cli(
        "verify-resume", recipe, "--kill-at", "9", "--save-every", "2", "--parallel", "--work-dir", tmp_path / "w"
    )
    assert result.code == 0, result.out + result.err
    assert "killed after observing: step 9" in result.out
    assert "resumed from" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("identical: ")


def test_verify_resume_catches_a_plugin_that_is_not_resume_safe(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verify_resume, "launcher", forked.launch)  # the real processes are tested above
    recipe = write_recipe(
        tmp_path / "recipe.toml",
        **{
            "run.max_steps": 8,
            "run.epochs": None,
            "run.val_every": 4,
            "callbacks": [{"name": "ckpt_leaky"}],
            "data.val.extra": None,
            "data.test": None,
        },
    )
    result = cli("verify-resume", recipe, "--kill-at", "5", "--hold", "--parallel", "--work-dir", tmp_path / "w")
    assert result.code == 1, result.out + result.err
    assert "record 7 differs:" in result.out  # train steps 1-4, validation, train step 5, then step 6
    assert '"leaky": 5' in result.out and '"leaky": 0' in result.out
