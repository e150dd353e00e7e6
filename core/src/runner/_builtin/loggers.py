"""The core's file loggers, ``jsonl`` and ``csv`` (torch-free).

Both append to a file in the run directory through Python's buffered I/O (a record costs
a few microseconds) and flush at most every ``flush_secs`` and when the run ends. After a
resume they keep appending, so records of steps past the restored checkpoint can appear
twice; ``metrics.jsonl``, which the engine truncates on resume, stays the canonical record.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from runner._contract.errors import RunnerError
from runner._engine.rundir import METRICS_FILE

#: CSV columns that identify a record come first, in this order.
LEAD_COLUMNS = ("stage", "key", "epoch", "step")


def _target(run_dir: Path, path: str, kind: str) -> Path:
    target = Path(path) if Path(path).is_absolute() else Path(run_dir) / path
    if target.resolve() == (Path(run_dir) / METRICS_FILE).resolve():
        raise RunnerError(f"{kind} logger: path {path!r} is the engine's own {METRICS_FILE}; choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


class _FileLogger:
    def __init__(self, file: TextIO, stages: list[str], flush_secs: float) -> None:
        self._file = file
        self._stages = frozenset(stages)
        self._flush_secs = flush_secs
        self._flushed = time.monotonic()

    def _wanted(self, record: dict[str, Any]) -> bool:
        return not self._stages or record.get("stage") in self._stages

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if now - self._flushed >= self._flush_secs:
            self._file.flush()
            self._flushed = now

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class JsonlLogger(_FileLogger):
    """One JSON object per line, optionally with wall-clock ``time`` and ``elapsed`` seconds."""

    def __init__(
        self,
        run_dir: Path,
        path: str = "log.jsonl",
        stages: list[str] | None = None,
        timestamps: bool = True,
        flush_secs: float = 5.0,
    ) -> None:
        self.path = _target(run_dir, path, "jsonl")
        super().__init__(open(self.path, "a", encoding="utf-8"), list(stages or ()), flush_secs)  # noqa: SIM115
        self._timestamps = timestamps
        self._started = time.time()

    def log(self, record: dict[str, Any]) -> None:
        if not self._wanted(record):
            return
        if self._timestamps:
            now = time.time()
            record = {**record, "time": round(now, 3), "elapsed": round(now - self._started, 3)}
        self._file.write(json.dumps(record, separators=(", ", ": "), default=str) + "\n")
        self._maybe_flush()


class CsvLogger(_FileLogger):
    """CSV rows. The header comes from the first record (``stage, key, epoch, step`` first);
    a record with a new column widens it by rewriting the file once, so every row keeps
    its values under the right names. With ``columns`` the header is fixed and other
    keys are dropped.
    """

    def __init__(
        self,
        run_dir: Path,
        path: str = "metrics.csv",
        stages: list[str] | None = None,
        columns: list[str] | None = None,
        flush_secs: float = 5.0,
    ) -> None:
        self.path = _target(run_dir, path, "csv")
        self._fixed = bool(columns)
        self._columns: list[str] = list(columns or ())
        if not self._fixed and self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="", encoding="utf-8") as existing:  # appending after a resume
                self._columns = next(csv.reader(existing), [])
        super().__init__(open(self.path, "a", newline="", encoding="utf-8"), list(stages or ()), flush_secs)  # noqa: SIM115
        self._writer = self._make_writer()
        if self._fixed and self.path.stat().st_size == 0:
            self._writer.writeheader()

    def _make_writer(self) -> csv.DictWriter[str]:
        return csv.DictWriter(self._file, fieldnames=self._columns, extrasaction="ignore", lineterminator="\n")

    def log(self, record: dict[str, Any]) -> None:
        if not self._wanted(record):
            return
        if not self._fixed:
            new = [k for k in record if k not in self._columns]
            if new:
                self._widen(new)
        self._writer.writerow({k: "" if v is None else v for k, v in record.items()})
        self._maybe_flush()

    def _widen(self, new: list[str]) -> None:
        """Add columns (the identifying ones first); rows already written are rewritten."""
        old = self._columns
        lead = [c for c in LEAD_COLUMNS if c in old or c in new]
        self._columns = lead + [c for c in [*old, *new] if c not in LEAD_COLUMNS]
        self._file.flush()
        rows: list[dict[str, str]] = []
        if old:
            with open(self.path, newline="", encoding="utf-8") as existing:
                rows = list(csv.DictReader(existing))
        self._file.close()
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
        os.replace(tmp, self.path)
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = self._make_writer()
