"""Graceful Ctrl-C: the first finishes the current step and stops; the second stops at once.

Used when no checkpointer handles signals itself (runner-checkpoint installs its own
handlers, which also save before stopping).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runner._contract.context import RunContext


@contextlib.contextmanager
def graceful_interrupt(run: RunContext) -> Iterator[None]:
    """Within the block, a first SIGINT asks the loop to stop after the current step."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handle(signum: int, frame: FrameType | None) -> None:
        if run.should_stop and run.extras.get("interrupted"):
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        run.should_stop = True
        run.stop_reason = "interrupted by Ctrl-C"
        run.extras["interrupted"] = True
        if run.is_primary:
            print("\nfinishing the current step, then stopping (Ctrl-C again stops at once)", file=sys.stderr)

    signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
