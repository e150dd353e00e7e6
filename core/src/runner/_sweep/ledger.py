"""The sweep directory's trial ledger: one JSON line per trial that ended.

``trials.jsonl`` is appended to (a line per write, flushed and synced) as each trial
ends, so whatever killed the sweep, every finished trial is on record and a restarted
sweep skips it. A trial that was running when the sweep died has no line: it runs again.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import attrs

LEDGER_FILE = "trials.jsonl"
#: Trial outcomes that count as done: a restarted sweep does not run these again.
DONE = ("finished", "pruned", "failed")


@attrs.frozen
class Trial:
    """One trial of a sweep: its number, the values it set, and how it ended.

    ``status``: ``finished``, ``pruned`` (stopped by the sweeper), ``failed`` (the run
    exited with an error) or ``interrupted`` (the sweep itself was stopped: not done).
    ``value``: the best value of the sweep's metric over the trial's validation records
    (None when it logged none). ``reports``: ``(step, value)`` of each of those records;
    ``metric``: the metric's name (``main/accuracy``); ``note``: why it was pruned or failed.
    """

    number: int
    params: dict[str, Any]
    status: str
    value: float | None = None
    run_dir: str = ""
    reports: tuple[tuple[int, float], ...] = ()
    note: str = ""
    metric: str = ""

    @property
    def done(self) -> bool:
        return self.status in DONE

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["reports"] = [list(r) for r in self.reports]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        reports = tuple((int(step), float(value)) for step, value in data.get("reports", []))
        return cls(
            number=int(data["number"]),
            params=dict(data.get("params", {})),
            status=str(data["status"]),
            value=None if data.get("value") is None else float(data["value"]),
            run_dir=str(data.get("run_dir", "")),
            reports=reports,
            note=str(data.get("note", "")),
            metric=str(data.get("metric", "")),
        )


def read_ledger(directory: Path) -> dict[int, Trial]:
    """Trials on record by number (the last line of a number wins); a torn last line is skipped."""
    trials: dict[int, Trial] = {}
    try:
        lines = (directory / LEDGER_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return trials
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            trial = Trial.from_json(json.loads(line))
            trials[trial.number] = trial
    return trials


def append(directory: Path, trial: Trial) -> None:
    """Record ``trial`` (one line, written with one ``write`` and synced)."""
    line = json.dumps(trial.to_json(), sort_keys=True) + "\n"
    fd = os.open(directory / LEDGER_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
