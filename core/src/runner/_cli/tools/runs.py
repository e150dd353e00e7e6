"""Run directories on disk: their status, progress and metrics (torch-free).

The engine writes, on the primary process:

- ``recipe.toml``: the resolved recipe, at start;
- ``heartbeat.json``: ``{"pid", "host", "started"}`` at start, its modification time
  refreshed every :data:`HEARTBEAT_SECS` by a daemon thread, and ``"ended"`` (plus
  ``"error"`` when the run raised) added when the run stops;
- ``metrics.jsonl``: every record;
- ``summary.json``: when the run finished.

From these a run is *finished* (summary.json written after the heartbeat started),
*running* (heartbeat not ended, fresh, and on this host its process alive) or *crashed*
(anything else: it raised, was killed, or its machine went away).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from runner._engine.records import lower_is_better
from runner._engine.rundir import HEARTBEAT_FILE, HEARTBEAT_SECS, METRICS_FILE, SUMMARY_FILE


@attrs.frozen
class Best:
    """The best value of one metric over a run's validation records."""

    metric: str
    value: float
    step: int


@attrs.frozen
class RunInfo:
    """What ``runner runs`` shows for one run directory."""

    path: Path
    name: str
    status: str
    steps: int | None
    seconds: float | None
    started: float | None
    best: Best | None
    note: str = ""


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in (METRICS_FILE, HEARTBEAT_FILE, SUMMARY_FILE))


def find_runs(root: Path) -> list[Path]:
    """``root`` itself if it is a run directory, else run directories below it (two levels)."""
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if is_run_dir(child):
            found.append(child)
        else:
            found.extend(sorted(p for p in child.iterdir() if is_run_dir(p)))
    return found


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """The run's ``metrics.jsonl`` records (a torn last line, from a crash, is skipped)."""
    records: list[dict[str, Any]] = []
    try:
        lines = (run_dir / METRICS_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return records
    for line in lines:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def status_of(run_dir: Path, now: float | None = None) -> tuple[str, str]:
    """``(status, note)``: finished, interrupted, running or crashed, and why when it crashed."""
    now = time.time() if now is None else now
    beat_path, summary_path = run_dir / HEARTBEAT_FILE, run_dir / SUMMARY_FILE
    beat = read_json(beat_path)
    if summary_path.is_file() and (beat is None or summary_path.stat().st_mtime >= float(beat.get("started", 0))):
        signal_name = (read_json(summary_path) or {}).get("interrupted")
        return ("interrupted", f"by {signal_name}") if signal_name else ("finished", "")
    if beat is None:
        return "crashed", "no summary.json and no heartbeat"
    if "ended" in beat:
        if beat.get("interrupted"):
            return "interrupted", f"stopped at once by a second {beat['interrupted']}"
        return "crashed", str(beat.get("error") or "ended without writing summary.json")
    age = now - beat_path.stat().st_mtime
    if age > 3 * HEARTBEAT_SECS:
        return "crashed", f"killed? heartbeat stopped {age:.0f}s ago"
    if beat.get("host") == socket.gethostname() and not _pid_alive(int(beat.get("pid", 0))):
        return "crashed", f"killed? process {beat.get('pid')} is gone"
    return "running", ""


def val_metric_names(records: Iterable[dict[str, Any]]) -> list[str]:
    """``key/metric`` names found in validation records, in order of appearance."""
    names: dict[str, None] = {}
    for record in records:
        if record.get("stage") != "val":
            continue
        for name, value in record.items():
            if name not in ("stage", "key", "epoch", "step") and isinstance(value, (int, float)):
                names.setdefault(f"{record.get('key', 'main')}/{name}", None)
    return list(names)


def default_metric(names: list[str]) -> str | None:
    """A higher-is-better metric (accuracy) if there is one, else the first (val loss)."""
    better = [n for n in names if not lower_is_better(n)]
    return (better or names)[0] if names else None


def best_of(records: list[dict[str, Any]], metric: str | None) -> Best | None:
    """Best value of ``metric`` (``name`` or ``key/name``) over validation records."""
    if metric is None:
        return None
    key, _, name = metric.rpartition("/")
    best: Best | None = None
    lower = lower_is_better(name)
    for record in records:
        if record.get("stage") != "val" or (key and record.get("key", "main") != key):
            continue
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if best is None or (value < best.value if lower else value > best.value):
            label = f"{record.get('key', 'main')}/{name}"
            best = Best(label, float(value), int(record.get("step", 0)))
    return best


def read_run(run_dir: Path, metric: str | None = None, now: float | None = None) -> RunInfo:
    """Status, steps, best validation metric and wall time of one run directory."""
    status, note = status_of(run_dir, now)
    records = read_records(run_dir)
    summary = read_json(run_dir / SUMMARY_FILE) if status == "finished" else None
    beat = read_json(run_dir / HEARTBEAT_FILE)
    steps: int | None = None
    seconds: float | None = None
    if summary is not None:
        steps = int(summary.get("global_step", 0))
        seconds = float(summary.get("seconds", 0.0))
        note = str(summary.get("stop_reason") or "")
    elif records:
        steps = max(int(r.get("step", 0)) for r in records)
    started = float(beat["started"]) if beat and "started" in beat else None
    if seconds is None and started is not None:
        end = beat.get("ended") if beat else None
        if end is None and beat is not None:
            end = (run_dir / HEARTBEAT_FILE).stat().st_mtime if status == "crashed" else time.time()
        seconds = max(0.0, float(end) - started) if end is not None else None
    chosen = metric or default_metric(val_metric_names(records))
    return RunInfo(run_dir, run_dir.name, status, steps, seconds, started, best_of(records, chosen), note)
