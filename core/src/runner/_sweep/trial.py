"""Run one trial: ``runner run`` in a child process, its validation metric read as it is logged.

The child writes a normal run directory. Its ``metrics.jsonl`` is read while it runs
(the engine flushes each validation record), each value of the sweep's metric is passed
to the sweeper's ``report``, and when that says stop the child gets SIGTERM: it stops at
the end of its current step like any interrupted run. On Linux a child dies with the
sweep (``PR_SET_PDEATHSIG``), so a killed sweep leaves no trial running.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runner._engine.rundir import METRICS_FILE
from runner._sweep.metric import default_metric, value_of

Report = Callable[[int, float], bool]
POLL_SECONDS = 0.2


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG


class _Tail:
    """New complete lines of a growing JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def records(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out


class TrialProcess:
    """A running trial; :meth:`wait` watches it to the end."""

    def __init__(self, command: Sequence[str], run_dir: Path, log: Path, cwd: Path) -> None:
        self.run_dir = run_dir
        self.log_path = log
        with open(log, "wb") as handle:
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        self.stopped = False

    def stop(self) -> None:
        """Ask the run to stop at the end of its step (SIGTERM), once."""
        if not self.stopped and self.process.poll() is None:
            self.stopped = True
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def wait(self, metric: str, report: Report | None) -> tuple[int, list[tuple[int, float]], str]:
        """``(exit status, [(step, value)], metric)`` once the run ended; ``report`` sees
        each value as it is logged (an exception from it stops the run and propagates)."""
        tail = _Tail(self.run_dir / METRICS_FILE)
        reports: list[tuple[int, float]] = []
        try:
            while True:
                status = self.process.poll()
                for record in tail.records():
                    if not metric and record.get("stage") == "val":
                        metric = default_metric(record) or ""
                    value = value_of(record, metric) if metric else None
                    if value is None:
                        continue
                    step = int(record.get("step", 0))
                    reports.append((step, value))
                    if report is not None and status is None and not report(step, value):
                        self.stop()
                if status is not None:
                    return status, reports, metric
                time.sleep(POLL_SECONDS)
        except BaseException:
            self.stop()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
            raise

    def last_error(self) -> str:
        """The last ``error:`` line the run printed (why it failed), or its last line."""
        try:
            lines = [line for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines() if line]
        except OSError:
            return ""
        errors = [line for line in lines if line.startswith("error:")]
        shown = (errors or lines or [""])[-1]
        return shown if len(shown) <= 300 else shown[:297] + "..."


def trial_command(recipe: str, plugins: Sequence[str], overrides: Sequence[str], run_dir: Path) -> list[str]:
    """The ``runner run`` command line of one trial."""
    command = [sys.executable, "-m", "runner"]
    for spec in plugins:
        command += ["-p", spec]
    command += ["run", recipe]
    for item in overrides:
        command += ["-o", item]
    return [*command, "--run-dir", str(run_dir), "--no-progress"]


def sigterm_status() -> int:
    """The exit status of a run stopped by SIGTERM (it exits 128 + 15)."""
    return 128 + int(signal.SIGTERM)
