"""Workers die with their launcher, and show the launcher that they are alive.

A worker must not outlive the process that launched it: when ``runner run`` (or
torchrun) is SIGKILLed, by the OOM killer, a scheduler or a test harness, its workers
would be re-parented to init and train on, writing records, checkpoints and
``summary.json`` into the run directory, then wait forever for a launcher that is gone.

- On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill a worker the moment
  its parent dies, when that parent is the launcher (``spawn`` and ``fork`` start methods,
  torchrun). Under ``forkserver`` the parent is the fork server, which lives as long as
  any worker does, so it cannot tell.
- Everywhere, a watchdog thread polls the launcher's pid every :data:`WATCH_S` seconds
  (with its start time, so a recycled pid is not taken for it; a zombie counts as dead)
  and SIGKILLs its own process when the launcher is gone.

What the workers leave then goes with them: data-loader workers notice their parent's
death (torch's own watchdog), the fork server exits with its last worker, and
multiprocessing's resource tracker unlinks the launcher's semaphores in ``/dev/shm``
once no process holds them. The launcher's temporary directories are removed by its
janitor (:mod:`runner_ddp.janitor`).

The same thread touches the rank's heartbeat file every :data:`~runner_ddp.failures.HEARTBEAT_S`
seconds; the launcher's watch (:mod:`runner_ddp.watch`) names a rank whose heartbeat
stopped (a SIGSTOP, a frozen machine) instead of blaming the ranks that waited for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from runner_ddp.failures import HEARTBEAT_S, Markers

#: How often the watchdog checks that the launcher is still there.
WATCH_S = 0.2
_PR_SET_PDEATHSIG = 1


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` from field 3 (state) on, or None where there is no /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses


def start_time(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot, Linux), or ``""`` when unknown."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else ""


def process_state(pid: int) -> str:
    """``"stopped"``, ``"zombie"``, ``"running"``, or ``""`` when unknown (no /proc) or gone."""
    fields = _stat_fields(pid)
    if not fields:
        return ""
    return {"T": "stopped", "t": "stopped", "Z": "zombie", "X": "zombie"}.get(fields[0], "running")


@attrs.frozen
class Launcher:
    """The process whose death ends a worker: its pid and start time (``""``: unknown)."""

    pid: int
    started: str = ""

    @classmethod
    def this_process(cls) -> Launcher:
        return cls(os.getpid(), start_time(os.getpid()))

    @classmethod
    def parent(cls) -> Launcher:
        return cls(os.getppid(), start_time(os.getppid()))

    def alive(self) -> bool:
        """Whether the launcher still runs (not a zombie, not a new process with its pid)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else: a recycled pid
            return False
        if process_state(self.pid) == "zombie":
            return False
        return not self.started or start_time(self.pid) == self.started


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Lifeline:
    """Ties this worker's life to ``launcher`` and beats its heartbeat (see the module doc)."""

    def __init__(
        self,
        launcher: Launcher,
        markers: Markers | None = None,
        watch_s: float = WATCH_S,
        on_death: Callable[[], None] = _die,
    ) -> None:
        self.launcher = launcher
        self.markers = markers
        self.watch_s = watch_s
        self.on_death = on_death
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="runner-ddp-lifeline", daemon=True)

    def start(self) -> Lifeline:
        parent = os.getppid()
        # The launcher may have died before prctl: then no signal would ever come.
        if parent == self.launcher.pid and set_parent_death_signal() and os.getppid() != parent:
            self.on_death()
        if not self.launcher.alive():
            self.on_death()
        if self.markers is not None:
            self.markers.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (tests; a worker keeps its lifeline until it exits)."""
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join()

    def _watch(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(self.watch_s):
            if not self.launcher.alive():
                self.on_death()
                return
            if self.markers is not None and time.monotonic() - last_beat >= HEARTBEAT_S:
                self.markers.beat()
                last_beat = time.monotonic()
