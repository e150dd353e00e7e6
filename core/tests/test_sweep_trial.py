"""How ``Sweep.run_trial`` records a trial, with a stand-in for ``runner run`` (no training)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

from runner import Sweep
from runner._sweep import sweep as sweep_module

# Logs two validation records, then ends as a run does after its summary line: the
# engine's signal handlers are gone, so a SIGTERM now kills it (exit status -15).
FINISHING_RUN = textwrap.dedent(
    """
    import json, sys, time
    with open(sys.argv[1], "w") as out:
        for step in (5, 10):
            out.write(json.dumps({"stage": "val", "key": "main", "step": step, "loss": 1.0 / step}) + "\\n")
            out.flush()
    print("tiny: 10 steps -> run", flush=True)
    time.sleep(30)
    """
)


def test_a_run_the_sweeper_stops_as_it_exits_is_pruned_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def command(recipe: str, plugins: Sequence[str], overrides: Sequence[str], run_dir: Path) -> list[str]:
        return [sys.executable, "-c", FINISHING_RUN, str(run_dir / "metrics.jsonl")]

    monkeypatch.setattr(sweep_module, "trial_command", command)
    sweep = Sweep(recipe="r.toml", directory=tmp_path, axes=(), metric="main/loss", quiet=True, cwd=str(tmp_path))

    trial = sweep.run_trial({"optimizer.lr": 0.1}, report=lambda step, value: False)

    assert trial.status == "pruned", trial
    assert trial.reports == ((5, 0.2), (10, 0.1)) and trial.value == 0.1
    assert sweep.ledger()[trial.number].status == "pruned"


# Logs one validation record, then exits as a run stopped by Ctrl-C does (130).
INTERRUPTED_RUN = textwrap.dedent(
    """
    import json, sys
    with open(sys.argv[1], "w") as out:
        out.write(json.dumps({"stage": "val", "key": "main", "step": 5, "loss": 0.5}) + "\\n")
    print("interrupted", flush=True)
    sys.exit(130)
    """
)


def test_a_run_a_signal_from_outside_stopped_is_interrupted_and_runs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C reaches the whole process group; a killed sweep's runner (Ray, say) may take
    # its trials down with it. Neither is the trial failing: a resumed sweep runs it again.
    runs: list[Path] = []

    def command(recipe: str, plugins: Sequence[str], overrides: Sequence[str], run_dir: Path) -> list[str]:
        runs.append(run_dir)
        return [sys.executable, "-c", INTERRUPTED_RUN, str(run_dir / "metrics.jsonl")]

    monkeypatch.setattr(sweep_module, "trial_command", command)
    sweep = Sweep(recipe="r.toml", directory=tmp_path, axes=(), metric="main/loss", quiet=True, cwd=str(tmp_path))

    trial = sweep.run_trial({"optimizer.lr": 0.1}, number=0)
    assert trial.status == "interrupted" and not trial.done, trial
    assert sweep.finished() == []

    again = sweep.run_trial({"optimizer.lr": 0.1}, number=0)
    assert len(runs) == 2 and again.status == "interrupted"
