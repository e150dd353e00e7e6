"""A run killed before its first checkpoint continues with ``--resume`` (issue 18, item 5).

``runner run RECIPE --resume`` is the one command line of a preemptible job: its first
start (no run directory yet) and every restart, also one that follows a kill before the
first checkpoint was saved, which starts over and says so. Uses runner-checkpoint's
progress beacon to kill the run at an exact step, before any save.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from runner.testing import runner_command

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "digits_checkpoint.toml"
#: A short run whose first checkpoint is at its end (epoch 1 ends at step 20).
SHORT = ("-o", "run.epochs=1", "-o", "checkpoint.every_n_steps=1000", "-o", "run.log_every=2", "--no-progress")


def runner(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*runner_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def steps(run_dir: Path) -> list[tuple[str, int]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [(record["stage"], record["step"]) for record in map(json.loads, lines)]


@pytest.mark.slow
def test_resume_after_a_kill_before_the_first_checkpoint_starts_over(tmp_path: Path) -> None:
    run_dir, progress = tmp_path / "run", tmp_path / "progress"
    progress.touch()
    hold = {"RUNNER_CHECKPOINT_PROGRESS": str(progress), "RUNNER_CHECKPOINT_HOLD": "step:5"}
    with runner("run", str(RECIPE), "--run-dir", str(run_dir), *SHORT, env=hold) as first:
        try:
            deadline = time.monotonic() + 180
            while "hold step 5" not in progress.read_text(encoding="utf-8"):
                assert first.poll() is None and time.monotonic() < deadline, first.communicate()
                time.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate()
    assert not list((run_dir / "checkpoints").glob("*/manifest.json")), "a checkpoint was saved before the kill"
    assert (run_dir / "heartbeat.json").exists()  # the killed run had started

    with runner("run", str(RECIPE), "--run-dir", str(run_dir), *SHORT, "--resume") as again:
        out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert f"no checkpoint in {run_dir} yet: starting from the beginning" in err
    assert out.startswith("digits-checkpoint: 20 steps, 1 epochs")
    train = [step for stage, step in steps(run_dir) if stage == "train"]
    assert train == list(range(2, 21, 2))  # one run's records, from the beginning
