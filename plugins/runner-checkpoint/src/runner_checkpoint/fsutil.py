"""Durable file-system operations: fsync files and directories, atomic replace, hashing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 8 * 1024 * 1024


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
    """Size and sha256 of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as file:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            count = file.readinto(view)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()
