"""Catch SIGTERM/SIGINT for a save-then-stop, and keep data-loader workers out of it.

The handler only records the signal: the checkpointer saves at the end of the current
step. A second signal before that falls through to the handler that was installed
before (SIGINT: KeyboardInterrupt; SIGTERM: terminate).

Schedulers preempt by signalling every process of a job, data-loader workers included,
and torch's workers die on a SIGTERM that does not come from their parent, which fails
the main process's next batch before it can save. While a catcher is installed, processes
forked from this one (workers) start with SIGTERM and SIGINT blocked, so only the main
process reacts and shuts them down normally. This covers the ``fork`` start method (the
Linux default); workers started with ``spawn``/``forkserver`` keep torch's behaviour.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_shield_children = False
_at_fork_registered = False


def _block_in_child() -> None:
    if _shield_children:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def _set_shield(active: bool) -> None:
    global _shield_children, _at_fork_registered
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_block_in_child)
        _at_fork_registered = True
    _shield_children = active


class SignalCatcher:
    """Records the first SIGTERM/SIGINT while installed; ``received`` is its number."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._owner = os.getpid()

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def install(self) -> bool:
        """Install the handlers (only possible in the main thread); False when not installed."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return False
        self._owner = os.getpid()
        for signum in SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        _set_shield(True)
        return True

    def restore(self) -> None:
        """Put back the handlers that were there before."""
        if not self._previous or threading.current_thread() is not threading.main_thread():
            return
        _set_shield(False)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._owner:
            return  # a forked child that still has our handler: the main process decides
        if self.received is None:
            self.received = signum
            return
        previous = self._previous.get(signum)
        self.restore()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.raise_signal(signum)
