"""The checkpoints directory of a run: crash-safe commit, the ``latest`` pointer, retention.

Layout::

    <run_dir>/checkpoints/
        step-000120/        one directory per checkpoint (manifest.json + data files)
        step-000130/
        latest              the name of the checkpoint to resume from, one line
        damaged/            checkpoints a resume found damaged, moved aside (never resumed
                            from, counted or deleted by retention; delete them yourself)

A save writes into ``.tmp-<name>-<pid>/`` (with sharded tensors, every rank writes its
shards into its ``dcp/`` folder first), fsyncs every file and the directory, renames
it into place, fsyncs ``checkpoints/``, and only then replaces ``latest`` atomically
(temp file, fsync, ``os.replace``, directory fsync). The pointer is the commit point: a
directory renamed into place whose pointer update never happened is complete but not
resumed from automatically. Retention runs after the pointer moved, never deletes the
checkpoint ``latest`` names nor anything newer, and deletes by first renaming into
``.trash-*`` so a kill mid-deletion never leaves a half-deleted checkpoint that looks
real. Leftover ``.tmp-*``/``.trash-*`` entries are removed when the next run starts.

Only regular files are read (``fsutil.open_regular``): a ``latest`` that is a directory,
a FIFO or anything else is treated like a missing one (every checkpoint is tried).

This module never imports torch.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from runner_checkpoint import faults
from runner_checkpoint.fsutil import NotRegularFile, atomic_write, fsync_path, read_regular, write_new
from runner_checkpoint.manifest import FORMAT, FORMAT_VERSION, MANIFEST, CorruptCheckpoint, dumps, read_manifest, seal

CHECKPOINTS = "checkpoints"
LATEST = "latest"
DAMAGED = "damaged"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
NAME = re.compile(r"^step-(\d+)(?:-(\d+))?$")

#: ``write_files(directory) -> {file name: {"size": ..., "sha256": ...}}``; writes, no fsync.
#: A ``sha256`` may be a callable returning it (a hash still being computed): it is called
#: after the files are fsynced, so hashing overlaps the fsyncs.
WriteFiles = Callable[[Path], dict[str, dict[str, Any]]]


@attrs.frozen
class Pending:
    """A checkpoint being written: its name, temporary directory and save number."""

    name: str
    tmp: Path
    seq: int


@attrs.frozen
class Entry:
    """One checkpoint directory and its manifest (None when unreadable, with ``error``)."""

    name: str
    path: Path
    manifest: dict[str, Any] | None = None
    error: str | None = None

    @property
    def seq(self) -> int:
        """Save order across the run's lifetime (-1 when the manifest is unreadable)."""
        value = (self.manifest or {}).get("seq")
        return value if isinstance(value, int) else -1

    @property
    def step(self) -> int:
        value = (self.manifest or {}).get("step")
        if isinstance(value, int):
            return value
        match = NAME.match(self.name)
        return int(match.group(1)) if match else -1

    @property
    def monitor(self) -> tuple[str, float] | None:
        """(metric name, value) recorded at save time, if any."""
        monitor = (self.manifest or {}).get("monitor")
        if isinstance(monitor, dict) and isinstance(monitor.get("value"), (int, float)):
            return str(monitor.get("name")), float(monitor["value"])
        return None


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _order(entry: Entry) -> tuple[int, int, str]:
    return entry.seq, entry.step, entry.name


class Store:
    """The checkpoints of one run directory (``root`` is ``<run_dir>/checkpoints``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._last_seq: int | None = None  # known after the first commit (one writer per run)

    # -- reading ---------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every checkpoint directory, oldest first (manifests parsed, files not hashed)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            if not NAME.match(path.name) or not path.is_dir():
                continue
            try:
                found.append(Entry(path.name, path, read_manifest(path)))
            except CorruptCheckpoint as exc:
                found.append(Entry(path.name, path, None, "; ".join(exc.problems)))
        return sorted(found, key=_order)

    def read_latest(self) -> tuple[str | None, str | None]:
        """(the name ``latest`` points to, None) or (None, why it cannot be followed); (None,
        None) when there is no pointer. Only a regular file is read."""
        path = self.root / LATEST
        try:
            raw = read_regular(path, limit=4096)
        except (FileNotFoundError, NotADirectoryError):
            return None, None
        except NotRegularFile as exc:
            return None, f"{path} is not a regular file ({exc.kind})"
        except OSError as exc:
            return None, f"{path} is unreadable ({exc.strerror or exc})"
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = ""
        if not NAME.match(text):
            return None, f"{path} does not hold a checkpoint name"
        return text, None

    def latest_name(self) -> str | None:
        """The name ``latest`` points to, or None (no pointer, not a regular file, or not a checkpoint name)."""
        return self.read_latest()[0]

    def resume_candidates(self, repair: bool = False) -> tuple[list[Entry], str | None]:
        """Checkpoints to try, best first: the one ``latest`` names, then older ones.

        Returns the candidates and a note (one line) when the pointer could not be
        followed. With ``repair``, a ``latest`` that is not a regular file (a directory,
        a FIFO...) is moved into ``damaged/`` so the next save can write the pointer.
        """
        entries = self.entries()
        latest, problem = self.read_latest()
        by_name = {e.name: e for e in entries}
        newest_first = sorted(entries, key=_order, reverse=True)
        if latest is None:
            pointer = self.root / LATEST
            if problem is None:
                note = f"{pointer} is missing; trying every checkpoint, newest first" if entries else None
                return newest_first, note
            if repair and (pointer.is_symlink() or pointer.exists()) and not _is_regular(pointer):
                with contextlib.suppress(OSError):
                    problem += f"; moved it to {self.set_aside(pointer)}"
            return newest_first, f"{problem}; trying every checkpoint, newest first"
        top = by_name.get(latest)
        if top is None:
            return newest_first, f"{self.root / LATEST} names {latest}, which does not exist; trying the others"
        if top.seq < 0:
            return [top, *[e for e in newest_first if e is not top]], None
        return [top, *[e for e in newest_first if e is not top and 0 <= e.seq < top.seq]], None

    def set_aside(self, path: Path) -> Path:
        """Move ``path`` (a damaged checkpoint, or a ``latest`` that is no file) into
        ``damaged/``, where nothing resumes from it, counts it or deletes it; its new path.
        A name already taken there gets a ``-2``, ``-3``... suffix."""
        folder = self.root / DAMAGED
        folder.mkdir(exist_ok=True)
        target, index = folder / path.name, 1
        while target.exists() or target.is_symlink():
            index += 1
            target = folder / f"{path.name}-{index}"
        os.rename(path, target)
        fsync_path(folder)
        fsync_path(self.root)
        return target

    # -- writing ---------------------------------------------------------------------

    def _free_name(self, step: int) -> str:
        base = f"step-{step:06d}"
        name, index = base, 1
        while (self.root / name).exists():
            index += 1
            name = f"{base}-{index}"
        return name

    def begin(self, step: int) -> Pending:
        """Reserve the next checkpoint's name and create its temporary directory (see
        :meth:`finish`). With sharded tensors every rank writes its shards into it first."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._last_seq is None:
            self._last_seq = max((e.seq for e in self.entries()), default=0)
        name = self._free_name(step)
        tmp = self.root / f"{TMP_PREFIX}{name}-{os.getpid()}"
        tmp.mkdir()
        return Pending(name, tmp, self._last_seq + 1)

    def finish(
        self, pending: Pending, write_files: WriteFiles, meta: dict[str, Any], format_version: int = FORMAT_VERSION
    ) -> Entry:
        """Complete a checkpoint begun with :meth:`begin` crash-safely and point ``latest`` at it.

        ``write_files`` writes the rest of the files and returns every file of the
        checkpoint (those already in the directory included) with size and sha256."""
        name, tmp, seq = pending.name, pending.tmp, pending.seq
        final = self.root / name
        try:
            files = write_files(tmp)
            faults.point("before_fsync")
            for file in files:
                fsync_path(tmp / file)
            for folder in sorted({(tmp / file).parent for file in files} - {tmp}):
                fsync_path(folder)
            for entry in files.values():
                if callable(entry["sha256"]):
                    entry["sha256"] = entry["sha256"]()
            body = {"format": FORMAT, "format_version": format_version, "name": name, "seq": seq, **meta}
            manifest = seal({**body, "files": files})
            write_new(tmp / MANIFEST, dumps(manifest))
            fsync_path(tmp / MANIFEST)
            fsync_path(tmp)
            faults.point("after_temp_write")
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._last_seq = seq
        faults.point("after_rename")
        fsync_path(self.root)
        faults.point("before_pointer_update")
        self.point_latest(name, before_replace=lambda: faults.point("after_pointer_tmp"))
        faults.point("after_pointer_update")
        return Entry(name, final, manifest)

    def abandon(self, pending: Pending) -> None:
        """Remove a begun checkpoint's temporary directory (a save that failed before :meth:`finish`)."""
        shutil.rmtree(pending.tmp, ignore_errors=True)

    def commit(
        self, step: int, write_files: WriteFiles, meta: dict[str, Any], format_version: int = FORMAT_VERSION
    ) -> Entry:
        """Write a checkpoint crash-safely and point ``latest`` at it."""
        return self.finish(self.begin(step), write_files, meta, format_version)

    def point_latest(self, name: str, before_replace: Callable[[], None] | None = None) -> None:
        """Make ``latest`` name ``name``, atomically (a directory in its place is set aside
        first: nothing can replace a directory)."""
        pointer = self.root / LATEST
        if pointer.is_dir() and not pointer.is_symlink():
            self.set_aside(pointer)
        atomic_write(pointer, f"{name}\n".encode(), before_replace=before_replace)

    # -- retention -------------------------------------------------------------------

    def select_victims(self, keep_last: int | None, keep_best: int, monitor: str | None, mode: str) -> list[Entry]:
        """Checkpoints retention would delete (see :meth:`prune`)."""
        if keep_last is None:
            return []
        latest = self.latest_name()
        entries = [e for e in self.entries() if e.manifest is not None]
        top = next((e for e in entries if e.name == latest), None)
        if top is None:  # without a sound pointer nothing is known to be committed: delete nothing
            return []
        committed = [e for e in entries if e.seq <= top.seq]
        keep = {top.name} | {e.name for e in sorted(committed, key=_order, reverse=True)[:keep_last]}
        if keep_best and monitor:
            ranked = [
                e
                for e in committed
                if e.monitor is not None and e.monitor[0] == monitor and math.isfinite(e.monitor[1])
            ]
            sign = -1.0 if mode == "max" else 1.0
            ranked.sort(key=lambda e: (sign * e.monitor[1], -e.seq))  # type: ignore[index]
            keep |= {e.name for e in ranked[:keep_best]}
        return [e for e in committed if e.name not in keep]

    def prune(
        self, keep_last: int | None, keep_best: int = 0, monitor: str | None = None, mode: str = "max"
    ) -> list[str]:
        """Delete checkpoints beyond the ``keep_last`` newest and the ``keep_best`` best.

        Only committed checkpoints (not newer than ``latest``) are considered, the one
        ``latest`` names is always kept, and directories with an unreadable manifest are
        left for a person to look at. Returns the deleted names.
        """
        deleted = []
        for entry in self.select_victims(keep_last, keep_best, monitor, mode):
            self._remove(entry)
            deleted.append(entry.name)
        return deleted

    def _remove(self, entry: Entry) -> None:
        trash = self.root / f"{TRASH_PREFIX}{entry.name}-{os.getpid()}"
        os.rename(entry.path, trash)
        fsync_path(self.root)
        faults.point("during_prune")
        shutil.rmtree(trash)

    def cleanup(self) -> list[str]:
        """Remove what interrupted saves and deletions left behind; returns the names."""
        if not self.root.is_dir():
            return []
        removed = []
        for path in self.root.iterdir():
            if path.name.startswith((TMP_PREFIX, TRASH_PREFIX, f".{LATEST}.tmp-")):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path.name)
        return removed
