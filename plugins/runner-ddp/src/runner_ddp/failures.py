"""One clear error for a failed job: which rank failed first, and with what.

Each worker that raises writes ``rank<N>.json`` into a directory the launcher owns
(time, exception type and message, traceback). When a job fails, the launcher picks
the root cause among those reports and the exit codes the elastic agent collected:

1. an exception that is not a consequence of a peer's failure (a lost connection or a
   collective timeout), the earliest first;
2. a process killed by a signal (SIGKILL from the OOM killer, a segfault...);
3. the earliest of the rest.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from runner import RunnerError

#: Messages of exceptions a rank raises because *another* rank failed or stalled.
COLLATERAL = re.compile(
    r"connection (?:closed|reset) by peer|broken pipe|connection refused|socket timeout|timed out|timeout|"
    r"NCCL communicator was aborted|ncclRemoteError|remote process exited|recvValue|recvBytes|"
    r"Failed to recv|failed to send|read error|write error|aborted|DistNetworkError|DistStoreError",
    re.IGNORECASE,
)
COLLATERAL_TYPES = frozenset({"DistNetworkError", "DistStoreError", "DistBackendError"})


@attrs.frozen
class Report:
    """What one failed rank said about itself."""

    rank: int
    type: str
    message: str
    time: float = 0.0
    host: str = ""
    pid: int = 0
    runner_error: bool = False
    lines: tuple[str, ...] = ()
    traceback: str = ""

    @property
    def collateral(self) -> bool:
        """Whether the exception looks like a consequence of another rank's failure."""
        if self.runner_error:
            return False
        return self.type in COLLATERAL_TYPES or bool(COLLATERAL.search(f"{self.type}: {self.message}"))


def is_collateral(exc: BaseException) -> bool:
    """:attr:`Report.collateral` for an exception raised in this process."""
    return _report(0, exc).collateral


def _report(rank: int, exc: BaseException) -> Report:
    runner_error = isinstance(exc, RunnerError)
    return Report(
        rank=rank,
        type=type(exc).__name__,
        message=str(exc).strip() or type(exc).__name__,
        time=time.time(),
        host=socket.gethostname(),
        pid=os.getpid(),
        runner_error=runner_error,
        lines=tuple(exc.lines()) if isinstance(exc, RunnerError) else (),
        traceback="" if runner_error else "".join(traceback.format_exception(exc)),
    )


class Markers:
    """Files through which this node's workers tell the launcher how they ended.

    ``<attempt>/rank<R>.started|done|terminated|json`` in a directory the launcher owns:
    a rank that started but left neither a report, nor ``done``, nor ``terminated``
    died without raising (a signal such as SIGKILL, or ``os._exit``).
    """

    def __init__(self, directory: str | Path, rank: int, attempt: int) -> None:
        self.root = Path(directory) / str(attempt)
        self.rank = rank

    def mark(self, what: str) -> None:
        """Write ``rank<R>.<what>`` holding this process's pid (never raises)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / f"rank{self.rank}.{what}").write_text(str(os.getpid()), encoding="utf-8")
        except OSError:
            pass

    def report(self, exc: BaseException) -> None:
        """Record ``exc`` as this rank's failure (never raises)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            data = attrs.asdict(_report(self.rank, exc))
            (self.root / f"rank{self.rank}.json").write_text(json.dumps(data), encoding="utf-8")
        except Exception:  # reporting must not mask the failure itself
            pass


@attrs.frozen
class Attempt:
    """What the workers of the last attempt left behind."""

    number: int
    reports: dict[int, Report]
    started: dict[int, int]
    ended: frozenset[int]
    """Ranks that returned or were terminated by the launcher."""


def read_attempt(directory: str | Path) -> Attempt:
    """The markers and reports of the newest attempt in ``directory``."""
    attempts = [int(p.name) for p in Path(directory).iterdir() if p.name.isdigit()] if Path(directory).is_dir() else []
    if not attempts:
        return Attempt(0, {}, {}, frozenset())
    root = Path(directory) / str(max(attempts))
    reports: dict[int, Report] = {}
    started: dict[int, int] = {}
    ended: set[int] = set()
    for path in root.iterdir():
        name, _, kind = path.name.partition(".")
        if not name.startswith("rank") or not name[4:].isdigit():
            continue
        rank = int(name[4:])
        try:
            text = path.read_text(encoding="utf-8")
            if kind == "json":
                data = json.loads(text)
                data["lines"] = tuple(data.get("lines", ()))
                reports[rank] = Report(**data)
            elif kind == "started":
                started[rank] = int(text or 0)
            elif kind in ("done", "terminated"):
                ended.add(rank)
        except (OSError, ValueError, TypeError):
            continue
    return Attempt(max(attempts), reports, started, frozenset(ended))


def _signal_name(exitcode: int) -> str:
    try:
        return signal.Signals(-exitcode).name
    except ValueError:
        return f"signal {-exitcode}"


class RankFailed(RunnerError):
    """A rank of a multi-process job failed; the whole job was stopped."""

    def __init__(self, rank: int, summary: str, detail: list[str] | None = None) -> None:
        super().__init__(summary)
        self.rank = rank
        self._lines = [summary, *(detail or [])]

    def lines(self) -> list[str]:
        return list(self._lines)


def root_cause(attempt: Attempt, exits: Mapping[int, tuple[int, int]]) -> RankFailed:
    """The error to show for a failed job, from the last attempt's markers and the
    ``{rank: (exitcode, pid)}`` the elastic agent reported (often only one rank)."""
    failure = _root_cause(attempt, exits)
    if attempt.number:
        restarts = "restart" if attempt.number == 1 else "restarts"
        failure = RankFailed(
            failure.rank, f"{failure.lines()[0]} (after {attempt.number} {restarts})", failure.lines()[1:]
        )
    return failure


def _root_cause(attempt: Attempt, exits: Mapping[int, tuple[int, int]]) -> RankFailed:
    reports = attempt.reports
    real = [r for r in reports.values() if not r.collateral]
    if real:
        return _from_report(min(real, key=lambda r: (r.time, r.rank)), reports)
    silent = sorted(set(attempt.started) - set(reports) - attempt.ended)
    signalled = sorted(rank for rank, (code, _) in exits.items() if code < 0 and rank not in reports)
    for rank in signalled + silent:
        code, pid = exits.get(rank, (0, attempt.started.get(rank, 0)))
        how = f"was killed by {_signal_name(code)}" if code < 0 else "died without an exception (killed by a signal?)"
        return RankFailed(rank, f"rank {rank} (pid {pid}) {how}; the other ranks were stopped")
    if reports:
        return _from_report(min(reports.values(), key=lambda r: (r.time, r.rank)), reports)
    if exits:
        rank, (code, pid) = min(exits.items())
        how = f"was killed by {_signal_name(code)}" if code < 0 else f"exited with status {code}"
        return RankFailed(rank, f"rank {rank} (pid {pid}) {how}; the other ranks were stopped")
    return RankFailed(-1, "the workers failed without saying why")


def _from_report(report: Report, reports: Mapping[int, Report]) -> RankFailed:
    where = f"rank {report.rank}" + (f" on {report.host}" if report.host else "")
    same = [r.rank for r in reports.values() if (r.type, r.message) == (report.type, report.message)]
    if len(same) > 1:
        where = f"ranks {', '.join(map(str, sorted(same)))}"
    if report.runner_error:
        lines = list(report.lines) or [report.message]
        return RankFailed(report.rank, f"{where}: {lines[0]}", lines[1:])
    shown = f" (traceback above, printed by rank {report.rank})" if report.traceback and not report.collateral else ""
    return RankFailed(report.rank, f"{where} failed with {report.type}: {report.message.splitlines()[0]}{shown}")


def exits_of(failures: Mapping[int, Any]) -> dict[int, tuple[int, int]]:
    """``{rank: (exitcode, pid)}`` from a ChildFailedError's ``failures``."""
    return {int(rank): (int(f.exitcode), int(f.pid)) for rank, f in failures.items()}
