"""Ctrl-C during `runner run` (no checkpointer): the first stops after the current step with
the run's records intact; the second stops at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from core_helpers import HERMETIC_ENV, runner_command

from runner._engine.interrupt import graceful_interrupt

FIXTURES = Path(__file__).parent / "fixtures"
# Long enough that the run is still training when the signal arrives.
LONG = ["-o", "run.epochs=10000", "-o", "run.log_every=1", "--no-progress"]


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [*runner_command(), "run", str(FIXTURES / "toy.toml"), "--run-dir", str(run_dir), *LONG],
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


def test_first_ctrl_c_finishes_the_step_and_stops_cleanly(tmp_path: Path) -> None:
    process, metrics = _start(tmp_path)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "finishing the current step" in stderr
    assert "stopped: interrupted by Ctrl-C" in stdout
    records = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line whole
    assert records[-1]["stage"] == "train"  # no final validation or test after an interruption
    summary = json.loads((metrics.parent / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted by Ctrl-C"


def test_second_ctrl_c_stops_at_once() -> None:
    run = SimpleNamespace(should_stop=False, stop_reason="", extras={}, is_primary=False)
    before = signal.getsignal(signal.SIGINT)
    with graceful_interrupt(run):  # type: ignore[arg-type]
        signal.raise_signal(signal.SIGINT)
        assert run.should_stop and run.extras["interrupted"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the previous handler is back
