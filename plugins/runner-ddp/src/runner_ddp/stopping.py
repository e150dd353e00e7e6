"""SIGINT and SIGTERM while ``runner run`` launches workers: stop them the way one process stops.

A container runtime or a scheduler stopping a job often signals exactly one process, the
launcher. torch's elastic agent would answer by SIGTERMing its workers and SIGKILLing them
15 s later, which leaves no room for the clean stop every training process knows (the
core's signal service: finish the step, agree across ranks, ``on_interrupt``, where
checkpointers save, then exit 130/143).

:class:`StopForwarder` takes the two signals from the agent while the workers run:

- the **first** is forwarded to every worker that did not receive it itself, and the
  agent goes on watching them: the workers stop at the end of their step, save, return,
  and ``runner run`` prints the summary and exits 130/143 like a single-process run;
- a **second** (or a first before any worker runs) ends the job at once, as the agent
  would have: every worker is signalled again and killed after the agent's grace period.

Signals sent to the whole process group (Ctrl-C in a terminal, ``kill -- -PGID``) or to
every process of a cgroup reach the workers directly; forwarding them again would count
as a second signal and stop the workers at once. So each worker counts the stop signals
it receives (:class:`SignalCounter`, from the interpreter's signal wakeup fd, which a
thread reads even while the main thread computes), and the launcher waits up to
:data:`ACK_WAIT_S` for those counts before it forwards to the workers that still lack one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from runner_ddp.failures import Attempt, Markers, read_attempt

#: The signals the launcher forwards (the core's signal service handles both in workers).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: How long the launcher waits for workers to report a signal they received themselves.
ACK_WAIT_S = 1.0
#: The signals torch's agent keeps handling itself (it stops the workers at once).
AGENT_SIGNALS = "SIGHUP,SIGQUIT"
_AGENT_SIGNALS_ENV = "TORCHELASTIC_SIGNALS_TO_HANDLE"


class SignalCounter:
    """In a worker: count the SIGINT/SIGTERM this process receives into its markers.

    Python's C-level handler writes each caught signal's number to the wakeup fd at once;
    a daemon thread reads it, so the count is written within milliseconds even while the
    main thread is busy in a long torch operation. Only signals with a Python handler are
    seen: the core's signal service (during training), runner-ddp's SIGTERM marker and
    Python's SIGINT handler (before). Children forked from this process (data-loader
    workers) do not inherit the wakeup fd.
    """

    def __init__(self, markers: Markers) -> None:
        self.markers = markers
        self.count = 0
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        os.register_at_fork(after_in_child=_clear_wakeup_fd)
        self._thread = threading.Thread(target=self._count, name="runner-ddp-signals", daemon=True)
        self._thread.start()

    def _count(self) -> None:
        stops = {int(s) for s in STOP_SIGNALS}
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:
                return
            new = sum(1 for byte in data if byte in stops)
            if new:
                self.count += new
                self.markers.signals(self.count)


def agent_signals(config_class: type) -> dict[str, str]:
    """The ``LaunchConfig`` argument that leaves SIGINT and SIGTERM to :class:`StopForwarder`
    (older torch versions read only the environment variable, which the forwarder sets)."""
    fields = getattr(config_class, "__dataclass_fields__", {})
    return {"signals_to_handle": AGENT_SIGNALS} if "signals_to_handle" in fields else {}


def _clear_wakeup_fd() -> None:
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)


class StopForwarder:
    """In the launcher, around the elastic agent: see the module documentation."""

    def __init__(self, reports: str | Path, ack_wait_s: float = ACK_WAIT_S) -> None:
        self.reports = Path(reports)
        self.ack_wait_s = ack_wait_s
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}
        self._env: str | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def signal(self) -> int | None:
        """The first signal received, or None."""
        return self.received[0] if self.received else None

    def __enter__(self) -> StopForwarder:
        # torch's agent installs its handlers each time it starts workers, for the signals
        # this variable names (``LaunchConfig.signals_to_handle`` sets it, and leaves it
        # set): leave SIGINT and SIGTERM to us.
        self._env = os.environ.get(_AGENT_SIGNALS_ENV)
        os.environ[_AGENT_SIGNALS_ENV] = AGENT_SIGNALS
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._closed.set()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        if self._env is None:
            os.environ.pop(_AGENT_SIGNALS_ENV, None)
        else:
            os.environ[_AGENT_SIGNALS_ENV] = self._env
        if self._thread is not None:
            self._thread.join()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        if len(self.received) == 1 and self._running_workers():
            self._thread = threading.Thread(target=self._forward, args=(signum,), name="runner-ddp-forward")
            self._thread.start()
            return
        from torch.distributed.elastic.multiprocessing.api import SignalException

        # What torch's own handler does: the agent signals every worker and kills those
        # still alive after its grace period.
        self._closed.set()
        sigval = signal.Signals(signum)
        raise SignalException(f"Process {os.getpid()} got signal: {sigval}", sigval=sigval)

    def _running_workers(self, attempt: Attempt | None = None) -> dict[int, int]:
        """``{rank: pid}`` of this node's workers that started and have not ended."""
        attempt = attempt or read_attempt(self.reports)
        return {
            rank: pid
            for rank, pid in attempt.started.items()
            if rank not in attempt.ended and rank not in attempt.reports
        }

    def _forward(self, signum: int) -> None:
        """Signal the workers that did not count a signal of their own (restarted ones too)."""
        seen: dict[int, float] = {}
        while not self._closed.wait(0.02):
            attempt = read_attempt(self.reports)
            now = time.monotonic()
            for rank, pid in self._running_workers(attempt).items():
                if attempt.signals.get(rank, 0) >= 1:
                    continue
                first_seen = seen.setdefault(pid, now)
                if now - first_seen >= self.ack_wait_s:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signum)
                    seen[pid] = float("inf")  # once per process
