"""``runner sweep`` with the ``ray`` sweeper on a local Ray instance it starts (slow: Ray and trial processes).

Two trials of a tiny recipe, one at a learning rate that diverges: ASHA stops it at its
first rung; a sweep killed with SIGKILL leaves no trial running and, started again, runs
only the trial that had not ended (cut by ASHA against the replayed one); SIGTERM stops
the sweep with one line and exit 143.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.tune", reason="Ray Tune is not installed here: pip install 'runner-ray[ray]'")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

MAX_STEPS = 400
RECIPE = f"""
[run]
name = "tiny"
max_steps = {MAX_STEPS}
val_every = 5
log_every = 5
test = false
save_model = false

[data.train]
dataset = {{ name = "synthetic", split = "train", num_samples = 256, num_features = 8, num_classes = 3 }}
loader = {{ batch_size = 32, shuffle = true }}

[data.val.main]
dataset = {{ name = "synthetic", split = "val", num_samples = 128, num_features = 8, num_classes = 3 }}
loader = {{ batch_size = 128 }}

[model]
name = "mlp"
hidden = [16]

[task]
name = "classification"

[optimizer]
name = "sgd"
lr = 0.1

[sweep]
name = "ray"
search = "grid"
parallel = 1
metric = "main/loss"
grace_period = 5
reduction_factor = 2
[sweep.axes]
"optimizer.lr" = [0.3, 1e4]   # the second diverges: its loss is 1e32 at step 5, then NaN
"""

COMMAND = [sys.executable, "-m", "runner", "sweep", "tiny.toml", "--sweep-dir", "out"]


def sweep(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(COMMAND, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def ledger(directory: Path) -> dict[int, dict[str, Any]]:
    """The last line of each trial number."""
    path = directory / "trials.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {trial["number"]: trial for trial in map(json.loads, lines)}


def last_step(trial: dict[str, Any]) -> int:
    return int(trial["reports"][-1][0]) if trial["reports"] else 0


def mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in command and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


def start_and_wait_for_a_trial(tmp_path: Path) -> subprocess.Popen[bytes]:
    """The sweep (stderr in ``sweep.err``), in its own process group, once its first trial is on the ledger."""
    (tmp_path / "tiny.toml").write_text(RECIPE, encoding="utf-8")
    with open(tmp_path / "sweep.err", "wb") as err:
        process = subprocess.Popen(COMMAND, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 300
    while not ledger(tmp_path / "out") and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert ledger(tmp_path / "out"), "no trial ended before the deadline"
    return process


def test_asha_stops_the_trial_whose_learning_rate_diverges(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(RECIPE, encoding="utf-8")
    result = sweep(tmp_path)
    assert result.returncode == 0, result.stderr
    trials = ledger(tmp_path / "out")
    assert trials[0]["status"] == "finished" and last_step(trials[0]) == MAX_STEPS, trials[0]
    assert trials[1]["status"] == "pruned" and last_step(trials[1]) < MAX_STEPS, trials[1]
    assert trials[1]["params"] == {"optimizer.lr": 1e4}
    for trial in trials.values():  # each trial a normal run directory
        run_dir = Path(trial["run_dir"])
        assert run_dir.parent == tmp_path / "out"
        assert (run_dir / "recipe.toml").is_file() and (run_dir / "metrics.jsonl").is_file()
    assert "sweep: trial 1: pruned" in result.stderr
    assert "best: trial 0" in result.stdout


def test_a_killed_sweep_resumes_without_rerunning_the_finished_trial(tmp_path: Path) -> None:
    process = start_and_wait_for_a_trial(tmp_path)
    process.kill()  # the driver only: what it started must follow
    process.wait()
    first = ledger(tmp_path / "out")
    assert first[0]["status"] == "finished" and first.get(1, {}).get("status") in (None, "interrupted"), first
    log = tmp_path / "out" / "logs" / "trial-0000.log"
    written = log.stat().st_mtime_ns
    deadline = time.monotonic() + 60
    while mentioning(str(tmp_path)) and time.monotonic() < deadline:  # the running trial dies with the sweep
        time.sleep(0.5)
    assert mentioning(str(tmp_path)) == []
    # Ray's dashboard and runtime-env agents of the killed instance linger for about a minute
    # (they try to report the raylet's death to the dead GCS): not the sweep's to clean up.
    with pytest.raises(ProcessLookupError):
        while True:
            os.killpg(process.pid, signal.SIGKILL)
            time.sleep(0.2)

    result = sweep(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 trial(s) on record are not run again" in result.stderr
    assert "sweep: trial 0:" not in result.stderr  # not run, not even shown as starting
    assert log.stat().st_mtime_ns == written
    final = ledger(tmp_path / "out")
    assert final[0] == first[0]
    # Alone in the new session, trial 1 is cut against trial 0's replayed values.
    assert final[1]["status"] == "pruned" and last_step(final[1]) < MAX_STEPS, final[1]


def test_sigterm_stops_the_sweep_and_its_trials(tmp_path: Path) -> None:
    process = start_and_wait_for_a_trial(tmp_path)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 143
    last = (tmp_path / "sweep.err").read_text(encoding="utf-8").splitlines()[-1]
    assert last == "error: stopped by SIGTERM: the running trials were stopped; the same command resumes the sweep"
    trials = ledger(tmp_path / "out")
    assert trials[0]["status"] == "finished" and trials.get(1, {}).get("status") in (None, "interrupted"), trials
