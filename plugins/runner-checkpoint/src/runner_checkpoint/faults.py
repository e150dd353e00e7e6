"""Fault injection points inside the checkpoint write, for crash-safety tests.

The writer calls :func:`point` at each phase. Two ways to make a phase fail:

- in-process: set :data:`hook` to a callable; it receives the phase name and may raise;
- across processes: set ``RUNNER_CHECKPOINT_FAULT=PHASE`` (or ``PHASE@N`` for the N-th
  time that phase is reached in the process); the process then SIGKILLs itself there,
  which is what a power cut or an OOM kill looks like to the files on disk.

Neither is used outside tests; with both unset a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

ENV = "RUNNER_CHECKPOINT_FAULT"

#: Every phase, in the order a save reaches them.
PHASES: tuple[str, ...] = (
    "before_fsync",  # data files written, nothing fsynced
    "after_temp_write",  # temp directory complete and fsynced, not yet renamed
    "after_rename",  # renamed into place, parent directory not yet fsynced
    "before_pointer_update",  # committed directory durable, `latest` still names the previous one
    "after_pointer_tmp",  # new pointer written to its temp file, not yet moved over `latest`
    "after_pointer_update",  # `latest` names the new checkpoint; retention not yet run
    "during_prune",  # one old checkpoint moved to the trash, not yet deleted
)

#: Test hook: called with the phase name at every point (may raise to simulate a crash).
hook: Callable[[str], None] | None = None

_reached: dict[str, int] = {}


def point(phase: str) -> None:
    """Mark that the writer reached ``phase``; fail here if a test asked for it."""
    if hook is not None:
        hook(phase)
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition("@")
    if name != phase:
        return
    _reached[phase] = _reached.get(phase, 0) + 1
    if _reached[phase] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
