"""One clear error for a failed job: which rank failed first, and with what.

Each worker that raises writes ``rank<N>.json`` into a directory the launcher owns
(time, exception type and message, traceback). When a job fails, the launcher picks
the root cause among those reports and the exit codes the elastic agent collected:

1. a rank that stopped responding (its heartbeat went stale while it still existed: a
   SIGSTOP, a frozen machine), which the others then timed out waiting for;
2. an exception that is not a consequence of a peer's failure (a lost connection or a
   collective timeout), the earliest first. An exception counts as a consequence when it,
   or any exception in its cause chain, is one: a hook that failed in a collective is
   wrapped in a ``PluginError`` naming its plugin, but the peer that died is to blame;
3. a process killed by a signal (SIGKILL from the OOM killer, a segfault...);
4. the earliest of the rest.

Besides the reports, each worker leaves markers (``started``, ``done``, ``terminated``),
a heartbeat file it touches every :data:`HEARTBEAT_S` seconds and a count of the stop
signals it received (see :mod:`runner_ddp.lifeline` and :mod:`runner_ddp.stopping`).
"""

from __future__ import annotations

import contextlib
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
#: How often a worker touches its heartbeat file.
HEARTBEAT_S = 1.0
#: A heartbeat older than this, when another rank fails, means the rank had stopped
#: responding (healthy ranks touch theirs every HEARTBEAT_S, however busy training is).
STALE_S = 5.0


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

    caused_by_peer: bool = False
    """Set when the exception's cause chain shows a peer's failure (see :func:`is_collateral`)."""

    @property
    def collateral(self) -> bool:
        """Whether the exception looks like a consequence of another rank's failure."""
        if self.caused_by_peer:
            return True
        if self.runner_error:
            return False
        return self.type in COLLATERAL_TYPES or bool(COLLATERAL.search(f"{self.type}: {self.message}"))


def _looks_collateral(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in COLLATERAL_TYPES or bool(COLLATERAL.search(f"{name}: {exc}"))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in seen):
        seen.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def is_collateral(exc: BaseException) -> bool:
    """Whether ``exc`` is a consequence of another rank's failure: it, or an exception in
    its cause chain that is no runner error (whose message is the user's), is a lost
    connection or a collective timeout. A ``PluginError`` from a hook whose collective
    failed because a peer died is collateral; a ``RunnerError`` of its own is not."""
    return any(not isinstance(e, RunnerError) and _looks_collateral(e) for e in _chain(exc))


def _report(rank: int, exc: BaseException) -> Report:
    collateral = is_collateral(exc)
    runner_error = isinstance(exc, RunnerError) and not collateral
    return Report(
        rank=rank,
        type=type(exc).__name__,
        message=str(exc).strip() or type(exc).__name__,
        time=time.time(),
        host=socket.gethostname(),
        pid=os.getpid(),
        runner_error=runner_error,
        lines=tuple(exc.lines()) if runner_error and isinstance(exc, RunnerError) else (),
        traceback="" if runner_error else "".join(traceback.format_exception(exc)),
        caused_by_peer=collateral,
    )


class Markers:
    """Files through which this node's workers tell the launcher how they ended.

    ``<attempt>/rank<R>.started|done|terminated|json`` in a directory the launcher owns:
    a rank that started but left neither a report, nor ``done``, nor ``terminated``
    died without raising (a signal such as SIGKILL, or ``os._exit``). ``rank<R>.alive``
    is the heartbeat (its modification time), ``rank<R>.signals`` the number of SIGINT or
    SIGTERM the rank received.

    Writes never create the launcher's directory: once the launcher (or its janitor)
    removed it, a late marker is dropped instead of leaving a directory behind.
    """

    def __init__(self, directory: str | Path, rank: int, attempt: int) -> None:
        self.directory = Path(directory)
        self.root = self.directory / str(attempt)
        self.rank = rank

    def _write(self, what: str, text: str) -> None:
        self.root.mkdir(exist_ok=True)
        (self.root / f"rank{self.rank}.{what}").write_text(text, encoding="utf-8")

    def mark(self, what: str) -> None:
        """Write ``rank<R>.<what>`` holding this process's pid (never raises)."""
        with contextlib.suppress(OSError):
            self._write(what, str(os.getpid()))

    def beat(self) -> None:
        """Touch the heartbeat file (never raises)."""
        try:
            os.utime(self.root / f"rank{self.rank}.alive")
        except FileNotFoundError:
            self.mark("alive")
        except OSError:
            pass

    def signals(self, count: int) -> None:
        """Record that this rank has received ``count`` stop signals (never raises)."""
        with contextlib.suppress(OSError):
            self._write("signals", str(count))

    def report(self, exc: BaseException) -> None:
        """Record ``exc`` as this rank's failure (never raises)."""
        try:
            data = attrs.asdict(_report(self.rank, exc))
            self._write("json", json.dumps(data))
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
    beats: dict[int, float] = attrs.Factory(dict)
    """Each rank's last heartbeat (a time.time())."""
    signals: dict[int, int] = attrs.Factory(dict)
    """How many stop signals each rank received."""


def read_attempt(directory: str | Path) -> Attempt:
    """The markers and reports of the newest attempt in ``directory``."""
    try:
        attempts = [int(p.name) for p in Path(directory).iterdir() if p.name.isdigit()]
    except OSError:
        attempts = []
    if not attempts:
        return Attempt(0, {}, {}, frozenset())
    root = Path(directory) / str(max(attempts))
    reports: dict[int, Report] = {}
    started: dict[int, int] = {}
    ended: set[int] = set()
    beats: dict[int, float] = {}
    signals: dict[int, int] = {}
    try:
        paths = list(root.iterdir())
    except OSError:
        paths = []
    for path in paths:
        name, _, kind = path.name.partition(".")
        if not name.startswith("rank") or not name[4:].isdigit():
            continue
        rank = int(name[4:])
        try:
            if kind == "alive":
                beats[rank] = path.stat().st_mtime
                continue
            text = path.read_text(encoding="utf-8")
            if kind == "json":
                data = json.loads(text)
                data["lines"] = tuple(data.get("lines", ()))
                reports[rank] = Report(**data)
            elif kind == "started":
                started[rank] = int(text or 0)
            elif kind == "signals":
                signals[rank] = int(text or 0)
            elif kind in ("done", "terminated"):
                ended.add(rank)
        except (OSError, ValueError, TypeError):
            continue
    return Attempt(max(attempts), reports, started, frozenset(ended), beats, signals)


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


@attrs.frozen
class Hung:
    """A rank that stopped responding: no heartbeat for ``silent_s`` seconds."""

    rank: int
    pid: int
    silent_s: float
    state: str = ""
    """How the process looked when noticed (``"stopped"`` for a SIGSTOP), if known."""

    def describe(self) -> str:
        why = " (the process was stopped, e.g. by SIGSTOP or a debugger)" if self.state == "stopped" else ""
        return (
            f"rank {self.rank} (pid {self.pid}) stopped responding: no heartbeat for {self.silent_s:.0f} s{why}; "
            "the other ranks were stopped"
        )


def stale_ranks(attempt: Attempt) -> dict[int, Hung]:
    """Ranks whose heartbeat had stopped :data:`STALE_S` before the first failure report
    (the others' timeouts, lost connections): they hung, and the rest waited for them."""
    if not attempt.reports:
        return {}
    first = min(report.time for report in attempt.reports.values())
    found = {}
    for rank, pid in attempt.started.items():
        beat = attempt.beats.get(rank)
        if rank in attempt.reports or rank in attempt.ended or beat is None:
            continue
        if first - beat > STALE_S:
            found[rank] = Hung(rank, pid, first - beat)
    return found


def root_cause(
    attempt: Attempt, exits: Mapping[int, tuple[int, int]], hung: Mapping[int, Hung] | None = None
) -> RankFailed:
    """The error to show for a failed job, from the last attempt's markers, the
    ``{rank: (exitcode, pid)}`` the elastic agent reported (often only one rank) and the
    ranks the launcher found hung (and killed)."""
    failure = _root_cause(attempt, exits, hung or {})
    if attempt.number:
        restarts = "restart" if attempt.number == 1 else "restarts"
        failure = RankFailed(
            failure.rank, f"{failure.lines()[0]} (after {attempt.number} {restarts})", failure.lines()[1:]
        )
    return failure


def _root_cause(attempt: Attempt, exits: Mapping[int, tuple[int, int]], hung: Mapping[int, Hung]) -> RankFailed:
    if hung:  # found by the launcher's watch, and killed: the others only waited for it
        first = min(hung.values(), key=lambda h: (-h.silent_s, h.rank))
        return RankFailed(first.rank, first.describe())
    reports = attempt.reports
    real = [r for r in reports.values() if not r.collateral]
    if real:
        return _from_report(min(real, key=lambda r: (r.time, r.rank)), reports)
    signalled = sorted(rank for rank, (code, _) in exits.items() if code < 0 and rank not in reports)
    stale = stale_ranks(attempt)
    if stale and not signalled:
        first = min(stale.values(), key=lambda h: (-h.silent_s, h.rank))
        return RankFailed(first.rank, first.describe())
    silent = sorted(set(attempt.started) - set(reports) - attempt.ended)
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
