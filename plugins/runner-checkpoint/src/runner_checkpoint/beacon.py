"""Progress events for an outside observer (``runner verify-resume`` and the tests).

With ``RUNNER_CHECKPOINT_PROGRESS=FILE`` set, the checkpointer appends one line per event
to FILE: ``step N`` after each optimizer step (after any save of that step), ``val N KEY``
after each validation loader, ``epoch N E`` at each epoch end. The observer kills the run
when it sees the event it waits for, so kills follow observed progress, not a timer.

With ``RUNNER_CHECKPOINT_HOLD=KIND:N`` also set (``step:7``, ``val:10``, ``epoch:12``),
the run stops at the first such event at or after step N, writes ``hold ...`` and sleeps
until it is killed: the kill then lands exactly there (e.g. between two validation
loaders). Without the variables nothing happens.
"""

from __future__ import annotations

import os
import time
from typing import TextIO

PROGRESS_ENV = "RUNNER_CHECKPOINT_PROGRESS"
HOLD_ENV = "RUNNER_CHECKPOINT_HOLD"
KINDS = ("step", "val", "epoch")


class Beacon:
    """Writes progress events to a file, and holds at one if asked."""

    def __init__(self, path: str, hold: tuple[str, int] | None = None) -> None:
        self.file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        self.hold = hold

    @classmethod
    def from_env(cls) -> Beacon | None:
        path = os.environ.get(PROGRESS_ENV)
        if not path:
            return None
        hold = None
        spec = os.environ.get(HOLD_ENV, "")
        if spec:
            kind, _, step = spec.partition(":")
            if kind not in KINDS or not step.isdigit():
                raise ValueError(f"{HOLD_ENV}={spec!r}: expected KIND:STEP with KIND one of {', '.join(KINDS)}")
            hold = (kind, int(step))
        return cls(path, hold)

    def emit(self, kind: str, step: int, detail: str = "") -> None:
        line = f"{kind} {step} {detail}".rstrip()
        self.file.write(line + "\n")
        self.file.flush()
        if self.hold is not None and kind == self.hold[0] and step >= self.hold[1]:
            self.file.write(f"hold {line}\n")
            self.file.flush()
            while True:  # wait for the observer's SIGKILL
                time.sleep(3600)

    def close(self) -> None:
        self.file.close()
