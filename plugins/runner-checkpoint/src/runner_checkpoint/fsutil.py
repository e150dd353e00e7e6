"""Durable file-system operations: fsync files and directories, atomic replace, hashing,
and opening only regular files for reading.

Every file this plugin reads from a checkpoint or run directory goes through
:func:`open_regular`: a FIFO, a socket, a device or a directory where a file should be is
damage, never something to block on.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

CHUNK = 8 * 1024 * 1024
_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class NotRegularFile(OSError):
    """A path that exists but is not a regular file (``kind``: "fifo", "directory"...)."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path.name} is not a regular file ({kind})")
        self.path = path
        self.kind = kind


def file_kind(mode: int) -> str:
    """What an ``st_mode`` describes, in a word or two."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for unbuffered binary reading, only when it is a regular file.

    Raises :class:`NotRegularFile` for anything else (a FIFO would block the reader
    forever), without opening it when ``stat`` already tells; the file is opened
    non-blocking and checked again with ``fstat``, so a swap in between cannot block.
    ``FileNotFoundError`` and other ``OSError``s pass through.
    """
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, file_kind(mode))
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, file_kind(mode))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_exactly(file: BinaryIO, count: int) -> bytes:
    """Up to ``count`` bytes from an unbuffered file (fewer only at its end)."""
    chunks, left = [], count
    while left > 0:
        chunk = file.read(min(left, CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); see :func:`open_regular`."""
    with open_regular(path) as file:
        if limit is not None:
            return file.read(limit) or b""
        chunks = []
        while chunk := file.read(CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)


def regular_file_problem(path: Path) -> str | None:
    """None when ``path`` is a regular file; else "NAME: missing" or "NAME is not a regular
    file (KIND)" (symbolic links are followed)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path.name}: missing"
    except OSError as exc:
        return f"{path.name}: unreadable: {exc.strerror or exc}"
    return None if stat.S_ISREG(mode) else f"{path.name} is not a regular file ({file_kind(mode)})"


def fsync_path(path: Path) -> None:
    """fsync a file or a directory by path (a directory fsync makes renames in it durable)."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (no fsync: the caller fsyncs when the phase calls for it)."""
    with open(path, "xb") as file:
        file.write(data)


def atomic_write(path: Path, data: bytes, before_replace: object = None) -> None:
    """Replace ``path`` with ``data`` atomically and durably: temp file, fsync, rename, fsync dir.

    ``before_replace`` is called (if callable) between the temp file's fsync and the rename.
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    if callable(before_replace):
        before_replace()
    os.replace(tmp, path)
    fsync_path(path.parent)


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and sha256 of a regular file, streamed (:class:`NotRegularFile` for anything else)."""
    digest = hashlib.sha256()
    size = 0
    with open_regular(path) as file:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            count = file.readinto(view)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()
