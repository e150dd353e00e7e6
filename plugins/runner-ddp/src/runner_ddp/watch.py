"""The launcher's watch over its workers' heartbeats: a rank that stopped responding is
named and killed, instead of letting the others time out and take the blame.

Each worker's lifeline thread touches a heartbeat file every second, whatever its main
thread does (a long step, a collective waiting for a slow peer). A rank whose heartbeat
is older than ``timeout_s`` is not running at all: stopped (SIGSTOP, a debugger), or its
machine frozen. Its peers are then blocked in a collective that will fail after the same
``timeout_s``; the watch kills the silent rank (SIGKILL also ends a stopped process) so
the job ends now, and the launcher's error names it (:class:`runner_ddp.failures.Hung`).

If the launcher itself was stopped (Ctrl-Z stops the whole job), every heartbeat looks
old when it resumes: a gap in the watch's own loop restarts the count.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

from runner_ddp.failures import Hung, read_attempt
from runner_ddp.lifeline import process_state

#: How often the watch reads the heartbeats.
POLL_S = 1.0


class HangWatch:
    """A thread in the launcher; :attr:`hung` holds the ranks it killed."""

    def __init__(self, reports: str | Path, timeout_s: float, poll_s: float = POLL_S) -> None:
        self.reports = Path(reports)
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self.hung: dict[int, Hung] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="runner-ddp-watch", daemon=True)

    def __enter__(self) -> HangWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        since = time.time()  # heartbeats older than this are not held against a rank
        last = time.monotonic()
        while not self._stop.wait(self.poll_s):
            if time.monotonic() - last > 3 * self.poll_s + 1:  # this process was stopped or starved
                since = time.time()
            last = time.monotonic()
            self.check(since)

    def check(self, since: float = 0.0) -> None:
        """Kill and record every running rank whose heartbeat is older than ``timeout_s``."""
        attempt = read_attempt(self.reports)
        now = time.time()
        for rank, pid in attempt.started.items():
            beat = attempt.beats.get(rank)
            if beat is None or rank in attempt.ended or rank in attempt.reports or rank in self.hung:
                continue
            if now - max(beat, since) < self.timeout_s:
                continue
            state = process_state(pid)
            if state == "zombie" or not _exists(pid):
                continue  # it died: the agent reports that
            self.hung[rank] = Hung(rank, pid, now - beat, state if state == "stopped" else "")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
