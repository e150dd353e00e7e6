"""SIGINT/SIGTERM during `runner run` (no checkpointer): the first stops after the current step
with the run's records intact and exits 130/143; the second stops at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from core_helpers import HERMETIC_ENV, runner_command

pytestmark = pytest.mark.slow  # every test here starts processes

FIXTURES = Path(__file__).parent / "fixtures"
# Long enough that the run is still training when the signal arrives.
LONG = ["-o", "run.epochs=10000", "-o", "run.log_every=1", "--no-progress"]


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], Path]:
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [*runner_command(), "run", str(FIXTURES / "toy.toml"), "--run-dir", str(run_dir), *LONG, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **HERMETIC_ENV},
    )
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):  # triggered by progress, not a timer
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never started training"
        time.sleep(0.05)
    return process, metrics


@pytest.mark.parametrize(
    ("signum", "code", "label"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_signal_finishes_the_step_and_stops_cleanly(tmp_path: Path, signum: int, code: int, label: str) -> None:
    # No validation while training (each epoch's would end in a val record whenever the
    # signal lands during it): so any val record would be the final validation.
    process, metrics = _start(tmp_path, "-o", "run.val_every=1000000")
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr  # the shell's status for the signal, not success
    assert "finishing the current step" in stderr
    assert "continue later with" not in stderr  # no checkpointer: nothing to continue from
    assert f"stopped: interrupted by {label}" in stdout
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line whole
    assert {r["stage"] for r in records} == {"train"}  # no final validation or test after an interruption
    summary = json.loads((metrics.parent / "summary.json").read_text())
    assert summary["stop_reason"] == f"interrupted by {label}"
    assert summary["interrupted"] == signal.Signals(signum).name
    listing = subprocess.run(
        [*runner_command(), "runs", str(tmp_path)], capture_output=True, text=True, env={**os.environ, **HERMETIC_ENV}
    )
    assert "interrupted" in listing.stdout and "finished" not in listing.stdout


def test_second_ctrl_c_stops_at_once_and_the_heartbeat_says_so(tmp_path: Path) -> None:
    process, metrics = _start(tmp_path, "-o", 'callbacks=[{name="sleep", seconds=2.0}]')
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)  # separate signals (two at once reach Python's handler once); the step is still sleeping
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.rstrip().endswith("interrupted"), stderr
    assert "Traceback" not in stderr
    beat = json.loads((metrics.parent / "heartbeat.json").read_text())
    assert "ended" in beat and beat.get("interrupted") == "SIGINT"
