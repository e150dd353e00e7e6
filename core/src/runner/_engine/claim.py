"""Claiming a run directory: runner writes only into directories it owns, one run at a time.

A run directory is runner's when runner created it empty or it holds the marker file
:data:`~runner._engine.rundir.MARKER_FILE` (``.runner-run``); a directory holding other
files is never written to. The run that claims a directory keeps an exclusive
``flock`` on the marker until it ends; the OS drops the lock when the process dies, so
a killed run never leaves a directory locked. A second run into the same directory
is refused at once (or, for the default ``runs/<name>``, takes the next free
``runs/<name>-N``).

Only the process that launches a run claims its directory (``runner run``, before the
backend starts any worker): workers a backend starts write into the directory they are
given. Torch-free, like the CLI path up to training.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from runner._contract.errors import RunnerError
from runner._engine.rundir import HEARTBEAT_FILE, MARKER_FILE
from runner._version import __version__

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: directories are marked but not locked
    fcntl = None  # type: ignore[assignment]


_NOT_A_DIRECTORY = "run directory {path} exists and is not a directory; choose another --run-dir"


class RunDirError(RunnerError):
    """A run directory that cannot be used; the message says why and what to do."""


class ForeignDirectory(RunDirError):
    """The directory holds files that are not a runner run."""


class DirectoryInUse(RunDirError):
    """Another live run holds the directory's lock."""


class DirectoryHoldsRun(RunDirError):
    """The directory holds an earlier run and this one does not resume it."""


def os_error(exc: OSError, path: Path | None = None) -> str:
    """``"Read-only file system"``, with the file when the error names another than ``path``."""
    text = exc.strerror or type(exc).__name__
    if exc.filename is not None and (path is None or Path(exc.filename) != path):
        text += f" ({exc.filename})"
    return text


#: Descriptors of the locks this process holds. A forked child (a loader worker, a
#: backend's worker) closes its copies at once: a flock belongs to the open file, so a
#: child outliving a killed run would otherwise keep the directory locked.
_HELD: set[int] = set()


def _forget_in_child() -> None:
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_forget_in_child)


class Claim:
    """A claimed run directory; :meth:`release` (or leaving the ``with`` block) unlocks it.

    ``fresh``: the directory was new or empty when claimed, so everything in it is this
    run's; ``created``: this claim created it.
    """

    def __init__(self, path: Path, fd: int | None, *, fresh: bool = False, created: bool = False) -> None:
        self.path = path
        self.fresh = fresh
        self.created = created
        self._fd = fd
        if fd is not None:
            _HELD.add(fd)

    def discard_unstarted(self) -> bool:
        """Remove what a run that failed before training started wrote, when the directory
        was fresh: ``runner runs`` then lists no crashed run that never ran. A directory the
        run's heartbeat reached, or that held an earlier run, is kept. Whether it removed."""
        if self._fd is None or not self.fresh or (self.path / HEARTBEAT_FILE).exists():
            return False
        try:
            for entry in os.scandir(self.path):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            self.release()
            if self.created:
                os.rmdir(self.path)
        except OSError:  # best effort: the run's own error is what the user must see
            return False
        return True

    def release(self) -> None:
        if self._fd is not None and self._fd in _HELD:  # not in a forked child
            _HELD.discard(self._fd)
            os.close(self._fd)  # closing the file drops the lock
        self._fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def claim(path: Path, *, resume: bool) -> Claim:
    """Create or open the run directory ``path`` and lock it for this process's run.

    Refused (:class:`RunDirError`, one line) when the directory holds files that are not
    a runner run, when another run holds it, or, unless ``resume``, when it already
    holds a run. OS errors (read-only, no space, a file in the way) name the path.
    """
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ForeignDirectory(_NOT_A_DIRECTORY.format(path=path)) from None
    except OSError as exc:
        raise RunDirError(f"cannot create run directory {path}: {os_error(exc, path)}") from None
    entries = _entries(path)
    if entries and MARKER_FILE not in entries and not _legacy_run(path, entries):
        raise ForeignDirectory(_foreign_message(path, entries))
    marker = path / MARKER_FILE
    try:
        fd = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunDirError(f"cannot write to run directory {path}: {os_error(exc, path)}") from None
    try:
        _lock(fd, path)
        if not resume and _entries(path) - {MARKER_FILE}:
            raise DirectoryHoldsRun(
                f"run directory {path} already holds a run; pass --resume to continue it or choose another --run-dir"
            )
        _write_marker(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return Claim(path, fd, fresh=not entries - {MARKER_FILE}, created=created)


def check_not_foreign(path: Path) -> None:
    """Refuse, without claiming, a ``path`` that holds other files than a runner run:
    ``runner run`` calls it before it imports torch, so the common mistake fails fast."""
    if path.exists():
        entries = _entries(path)
        if entries and MARKER_FILE not in entries and not _legacy_run(path, entries):
            raise ForeignDirectory(_foreign_message(path, entries))


def claim_default(root: Path, name: str) -> Claim:
    """Claim ``root/name``, or the first ``root/name-N`` that is free (new, empty, or
    an unused claim): an earlier run, a live one or other files are never reused."""
    index = 0
    while True:
        candidate = root / (name if index == 0 else f"{name}-{index}")
        try:
            return claim(candidate, resume=False)
        except (ForeignDirectory, DirectoryInUse, DirectoryHoldsRun):
            index += 1


def unclaimed(path: Path) -> Claim:
    """A stand-in for processes that write into a directory claimed elsewhere."""
    return Claim(path, None)


def _foreign_message(path: Path, entries: set[str]) -> str:
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    return (
        f"run directory {path} is not empty and holds no runner run ({shown}); runner never writes over "
        "other files: choose another --run-dir (a new or empty directory)"
    )


def _entries(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except NotADirectoryError:
        raise ForeignDirectory(_NOT_A_DIRECTORY.format(path=path)) from None
    except OSError as exc:
        raise RunDirError(f"cannot read run directory {path}: {os_error(exc, path)}") from None


def _legacy_run(path: Path, entries: set[str]) -> bool:
    """A run directory written before runner marked them: its heartbeat is runner's."""
    if HEARTBEAT_FILE not in entries:
        return False
    try:
        beat = json.loads((path / HEARTBEAT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(beat, dict) and {"pid", "host", "started"} <= set(beat)


def _lock(fd: int, path: Path) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunDirError(f"cannot lock run directory {path}: {os_error(exc, path)}") from None
        holder = _holder(fd)
        raise DirectoryInUse(
            f"run directory {path} is in use by another run{holder}; wait for it to end or choose another --run-dir"
        ) from None


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info: Any = json.loads(os.read(fd, 4096) or b"{}")
        return f" (pid {int(info['pid'])} on {info['host']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _write_marker(fd: int, path: Path) -> None:
    info = {"runner": __version__, "pid": os.getpid(), "host": socket.gethostname(), "claimed": time.time()}
    data = (json.dumps(info) + "\n").encode()
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)  # a full disk shows here, before training starts
    except OSError as exc:
        raise RunDirError(f"cannot write to run directory {path}: {os_error(exc, path)}") from None
