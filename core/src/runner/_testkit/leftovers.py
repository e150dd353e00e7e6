"""Did a test leave processes or shared-memory entries behind? (``runner.testing.no_leftovers``)

A multi-process test (ranks, fork servers, data-loader workers, dataset servers, a local
Ray instance, a run killed on purpose) must leave nothing running and nothing in
``/dev/shm``. The check runs when the block ends and waits up to ``grace`` seconds for
processes that are on their way out (a data-loader worker notices its parent's death
within a few seconds); what is still there then is killed (so one failure does not leak
into the next test) and reported.

A process counts as the test's when it did not exist when the block started and

- descends from the test process (multiprocessing's fork server and resource tracker of
  the test process itself are shared infrastructure: they are not counted, but what they
  start is; a process that was running before the block, such as a module-scoped server
  or Ray instance, is not the test's and neither is what it starts), or
- its command line mentions the test's ``tmp_path``, or
- its initial environment carries the block's tag (:data:`TAG_ENV`, set in
  ``os.environ`` for the duration of the block): every process started with a copy of
  the test's environment has it, even after it was re-parented when its parent died.

A ``/dev/shm`` entry counts when it is new and no process outside the test's still maps
or opens it (another test running on the same machine may own it).

Linux reads ``/proc``; elsewhere ``ps`` lists processes (no environment tags) and there
is no ``/dev/shm`` to check.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs

#: Environment variable holding the tag of the running check.
TAG_ENV = "RUNNER_LEFTOVER_TAG"
SHM = Path("/dev/shm")
#: Command lines of the test process's own multiprocessing helpers (shared, not leftovers).
_HELPERS = ("multiprocessing.forkserver", "multiprocessing.resource_tracker")


@attrs.frozen
class Process:
    pid: int
    ppid: int
    state: str
    command: str

    def __str__(self) -> str:
        command = self.command if len(self.command) <= 160 else self.command[:157] + "..."
        return f"pid {self.pid} ({command})"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def processes() -> dict[int, Process]:
    """Every process on the machine (zombies included; their state is ``Z``)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return _ps()
    found = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat").decode(errors="replace")
        fields = stat.rpartition(")")[2].split()
        if len(fields) < 2:
            continue
        command = _read(entry / "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
        found[int(entry.name)] = Process(int(entry.name), int(fields[1]), fields[0], command)
    return found


def _ps() -> dict[int, Process]:
    try:
        text = subprocess.run(
            ["ps", "-A", "-o", "pid=,ppid=,stat=,command="], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    found = {}
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) >= 3 and parts[0].isdigit():
            pid = int(parts[0])
            found[pid] = Process(pid, int(parts[1]), parts[2][:1], parts[3] if len(parts) > 3 else "")
    return found


def _tagged(pid: int, tag: bytes) -> bool:
    return tag in _read(Path(f"/proc/{pid}/environ"))


def shm_entries() -> set[str]:
    try:
        return {p.name for p in SHM.iterdir()}
    except OSError:
        return set()


def _holders(names: set[str]) -> dict[str, set[int]]:
    """Which processes map or open each ``/dev/shm`` entry in ``names``."""
    held: dict[str, set[int]] = {name: set() for name in names}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        text = _read(entry / "maps").decode(errors="replace")
        for name in names:
            if f"/dev/shm/{name}" in text:
                held[name].add(pid)
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("/dev/shm/") and target[9:] in held:
                        held[target[9:]].add(pid)
    return held


class Leftovers:
    """One check: :meth:`start` before the test's processes exist, :meth:`finish` after."""

    def __init__(self, tmp_path: str | Path | None = None, grace: float = 20.0) -> None:
        self.marker = str(tmp_path) if tmp_path is not None else None
        self.grace = grace
        self.tag = uuid.uuid4().hex
        self._before: set[int] = set()
        self._shm: set[str] = set()
        self._saved_tag: str | None = None

    def start(self) -> None:
        self._before = set(processes())
        self._shm = shm_entries()
        self._saved_tag = os.environ.get(TAG_ENV)
        os.environ[TAG_ENV] = self.tag

    def _restore_tag(self) -> None:
        if self._saved_tag is None:
            os.environ.pop(TAG_ENV, None)
        else:
            os.environ[TAG_ENV] = self._saved_tag

    def survivors(self) -> list[Process]:
        """The test's processes still running (zombies are dead: not counted)."""
        table = processes()
        me = os.getpid()
        children: dict[int, list[int]] = {}
        for entry in table.values():
            children.setdefault(entry.ppid, []).append(entry.pid)
        helpers = {pid for pid in children.get(me, []) if any(h in table[pid].command for h in _HELPERS)}
        mine: set[int] = set()
        todo = list(children.get(me, []))
        while todo:
            pid = todo.pop()
            if pid not in table or pid in mine:
                continue
            if pid in self._before and pid not in helpers:
                continue  # started before the block (a module's server): what it starts is its own
            if pid not in helpers:
                mine.add(pid)
            todo += children.get(pid, [])
        tag = f"{TAG_ENV}={self.tag}".encode()
        for pid, entry in table.items():
            if pid in mine or pid in helpers or pid == me:
                continue
            if (self.marker and self.marker in entry.command) or _tagged(pid, tag):
                mine.add(pid)
        return sorted(
            (table[pid] for pid in mine - self._before if pid in table and table[pid].state != "Z"),
            key=lambda p: p.pid,
        )

    def new_shm(self, survivors: list[Process]) -> list[str]:
        """New ``/dev/shm`` entries that no process outside the test's holds."""
        new = shm_entries() - self._shm
        if not new:
            return []
        ours = {p.pid for p in survivors}
        held = _holders(new)
        return sorted(name for name in new if not held[name] - ours)

    def finish(self) -> list[str]:
        """Wait up to ``grace`` for the test's processes and entries to go; kill what is
        left and describe it (empty when nothing was left behind)."""
        self._restore_tag()
        deadline = time.monotonic() + self.grace
        while True:
            survivors = self.survivors()
            shm = self.new_shm(survivors)
            if (not survivors and not shm) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for process in survivors:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signal.SIGKILL)
        return [f"process {p} still running" for p in survivors] + [f"/dev/shm/{name} left behind" for name in shm]


@contextlib.contextmanager
def no_leftovers(tmp_path: str | Path | None = None, *, grace: float = 20.0) -> Iterator[Leftovers]:
    """Fail (AssertionError) when the block leaves a process or a ``/dev/shm`` entry behind.

    ``tmp_path``: processes whose command line mentions it count as the test's too.
    ``grace``: seconds to wait for them to exit before they are killed and reported.
    """
    check = Leftovers(tmp_path, grace)
    check.start()
    try:
        yield check
    finally:
        problems = check.finish()
    if problems:
        raise AssertionError("the test left behind:\n  " + "\n  ".join(problems))
