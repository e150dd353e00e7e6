"""recipes/digits_callbacks.toml resumes exactly (runner verify-resume): killed before early
stopping's patience starts counting and while it counts, the resumed run writes the same
records and stops at the same step; EMA's average and early stopping's counters travel in
the checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cb_helpers import DIGITS_CALLBACKS

from runner.testing import runner_command


@pytest.mark.slow
# The val F1 is best at step 70: killed at 40 the patience has not started counting; at 85
# one validation (step 80) has not improved.
@pytest.mark.parametrize("kill_at", [40, 85])
def test_verify_resume_is_identical_around_early_stopping(tmp_path: Path, kill_at: int) -> None:
    pytest.importorskip("runner_checkpoint")
    pytest.importorskip("runner_datasets")
    work = tmp_path / "work"
    done = subprocess.run(
        [*runner_command(), "verify-resume", str(DIGITS_CALLBACKS), "--kill-at", str(kill_at), "--work-dir", str(work)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical:" in done.stdout, done.stdout
    interrupted = work / "interrupted"
    checkpoints = sorted((interrupted / "checkpoints").glob("step-*"))
    assert checkpoints
    summary = json.loads((interrupted / "summary.json").read_text(encoding="utf-8"))
    assert summary["stop_reason"].startswith("early stopping: val/main/f1_macro did not improve for 3 validations")
    assert summary["global_step"] < 200  # stopped before the 10 epochs
    uninterrupted = json.loads((work / "uninterrupted" / "summary.json").read_text(encoding="utf-8"))
    assert uninterrupted["global_step"] == summary["global_step"]
    assert uninterrupted["extras"]["early_stopping"] == summary["extras"]["early_stopping"]
