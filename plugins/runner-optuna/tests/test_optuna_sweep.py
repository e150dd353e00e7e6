"""The optuna sweeper end to end: 6 trials on CPU, pruned from reported validation metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.testing import CliResult, run_cli_subprocess

RECIPE = """
[run]
name = "tiny"
max_steps = 30
val_every = 5
log_every = 5
test = false

[data.train]
dataset = { name = "synthetic", split = "train", num_samples = 256, num_features = 8, num_classes = 3 }
loader = { batch_size = 32, shuffle = true }

[data.val.main]
dataset = { name = "synthetic", split = "val", num_samples = 128, num_features = 8, num_classes = 3 }
loader = { batch_size = 128 }

[model]
name = "mlp"
hidden = [16]

[task]
name = "classification"

[optimizer]
name = "sgd"
lr = 0.1

[sweep]
name = "optuna"
trials = 6
parallel = 2
metric = "main/accuracy"
sampler = "random"
startup_trials = 1
[sweep.axes]
"optimizer.lr" = [1e-5, 1e-4, 0.3]
"""


def sweep(tmp_path: Path) -> CliResult:
    return run_cli_subprocess("sweep", "tiny.toml", "--sweep-dir", "out", cwd=tmp_path, timeout=600)


@pytest.mark.slow
def test_six_trials_with_pruning_then_a_restart_runs_none_again(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(RECIPE, encoding="utf-8")
    result = sweep(tmp_path)
    assert result.returncode == 0, result.stderr
    ledger = [json.loads(line) for line in (tmp_path / "out" / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["number"] for t in ledger) == list(range(6))
    statuses = {t["status"] for t in ledger}
    assert statuses <= {"finished", "pruned"} and "pruned" in statuses, ledger
    pruned = [t for t in ledger if t["status"] == "pruned"]
    assert all(t["params"]["optimizer.lr"] < 0.3 for t in pruned)  # only the hopeless ones
    assert "best: trial" in result.stdout and "optimizer.lr=0.3" in result.stdout
    for trial in ledger:  # each trial a normal run directory
        assert (Path(trial["run_dir"]) / "recipe.toml").is_file()

    again = sweep(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "6 trial(s) on record are not run again" in again.stderr
    assert len((tmp_path / "out" / "trials.jsonl").read_text().splitlines()) == 6
