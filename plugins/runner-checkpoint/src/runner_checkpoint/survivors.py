"""Which processes of a killed run are still running (``runner verify-resume``).

A kill only tests a resume if it ends the run: a launcher whose workers outlive it
(re-parented, training on) may finish the run by itself, and the comparison would then
say "identical" without any resume. A run is found two ways:

- its process group, when it was started as a group of its own (``runner
  verify-resume`` starts every run so);
- on Linux, the tag its environment carries (``/proc/PID/environ``): every process
  started with a copy of it has it, wherever it was re-parented.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

#: The environment variable that tags the processes of one run.
TAG_ENV = "RUNNER_VERIFY_RESUME_RUN"


def new_tag() -> str:
    return uuid.uuid4().hex


def _group_members(pgid: int) -> list[int]:
    proc = Path("/proc")
    if not proc.is_dir():  # no /proc: killpg(pgid, 0) says whether any member is left
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [-pgid]
    members = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text(errors="replace").rpartition(")")[2].split()
                if fields[0] != "Z" and int(fields[2]) == pgid:
                    members.append(int(entry.name))
    return members


def _tagged(tag: str) -> list[int]:
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes():
                    stat = (entry / "stat").read_text(errors="replace").rpartition(")")[2].split()
                    if stat and stat[0] != "Z":
                        found.append(int(entry.name))
    return found


def survivors(pgid: int | None, tag: str) -> list[int]:
    """Pids of the run's processes still running (``-PGID`` where only the group is known)."""
    found = set(_tagged(tag))
    if pgid is not None:
        found |= set(_group_members(pgid))
    return sorted(found)


def wait_gone(pgid: int | None, tag: str, timeout: float) -> list[int]:
    """Wait up to ``timeout`` for the run's processes to exit; SIGKILL and return those left."""
    deadline = time.monotonic() + timeout
    left = survivors(pgid, tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = survivors(pgid, tag)
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pid < 0:
                os.killpg(-pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    return left
