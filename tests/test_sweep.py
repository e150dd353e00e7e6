"""runner sweep end to end (slow: each trial is a runner run process): a 4-trial grid,
runs compare over its trials, and a sweep killed mid-way that resumes without rerunning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.testing import CliResult, run_cli_subprocess

RECIPE = """
[run]
name = "tiny"
max_steps = 20
val_every = 10
log_every = 5
test = false

[data.train]
dataset = { name = "synthetic", split = "train", num_samples = 128, num_features = 8, num_classes = 3 }
loader = { batch_size = 32, shuffle = true }

[data.val.main]
dataset = { name = "synthetic", split = "val", num_samples = 64, num_features = 8, num_classes = 3 }
loader = { batch_size = 64 }

[model]
name = "mlp"
hidden = [8]

[task]
name = "classification"

[optimizer]
name = "sgd"
lr = 0.1
"""


def runner(*args: str, cwd: Path, columns: int | None = None) -> CliResult:
    """``runner ARGS...``; ``columns`` sets ``$COLUMNS`` (tables fit it: pytest's children see 80)."""
    return run_cli_subprocess(*args, cwd=cwd, timeout=600, env={"COLUMNS": str(columns)} if columns else None)


def ledger(directory: Path) -> list[dict[str, object]]:
    path = directory / "trials.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_a_four_trial_grid_from_command_line_axes(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(RECIPE, encoding="utf-8")
    result = runner(
        "sweep", "tiny.toml", "-o", "optimizer.lr=choice(0.01, 0.3)", "-o", "model.hidden=choice([4], [16])",
        "--parallel", "2", "--sweep-dir", "grid", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    trials = ledger(tmp_path / "grid")
    assert [t["status"] for t in sorted(trials, key=lambda t: t["number"])] == ["finished"] * 4  # type: ignore[arg-type,return-value]
    points = {(t["params"]["optimizer.lr"], tuple(t["params"]["model.hidden"])) for t in trials}  # type: ignore[index]
    assert points == {(0.01, (4,)), (0.01, (16,)), (0.3, (4,)), (0.3, (16,))}
    assert "best: trial" in result.stdout
    # Wide enough for four run names side by side (narrower, the headers fold the names).
    compared = runner("runs", "compare", "grid", "--sort", "main/accuracy", cwd=tmp_path, columns=200)
    assert compared.returncode == 0, compared.stderr
    assert all(f"trial-000{n}" in compared.stdout for n in range(4))


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(RECIPE + '\n[sweep]\n[sweep.axes]\n"optimizer.lr" = [0.01, 0.1, 0.3]\n')
    command = [sys.executable, "-m", "runner", "sweep", "tiny.toml", "--sweep-dir", "s"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ledger(tmp_path / "s") and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = ledger(tmp_path / "s")
    assert first, "no trial finished before the deadline"
    done = {t["number"] for t in first}
    logs = {n: (tmp_path / "s" / "logs" / f"trial-{n:04d}.log").stat().st_mtime_ns for n in done}  # type: ignore[str-format]
    time.sleep(1.5)  # a trial whose sweep died dies too: nothing writes to the sweep any more
    result = runner("sweep", "tiny.toml", "--sweep-dir", "s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{len(done)} trial(s) on record are not run again" in result.stderr
    final = ledger(tmp_path / "s")
    assert sorted(t["number"] for t in final) == [0, 1, 2]  # type: ignore[type-var]
    for number, mtime in logs.items():  # finished trials were not run again
        assert (tmp_path / "s" / "logs" / f"trial-{number:04d}.log").stat().st_mtime_ns == mtime  # type: ignore[str-format]
