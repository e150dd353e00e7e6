"""The checkpoints directory of a run: crash-safe commit, the ``latest`` pointer, retention.

Layout::

    <run_dir>/checkpoints/
        step-000120/        one directory per checkpoint (manifest.json + data files)
        step-000130/
        latest              the name of the checkpoint to resume from, one line

A save writes into ``.tmp-<name>-<pid>/``, fsyncs every file and the directory, renames
it into place, fsyncs ``checkpoints/``, and only then replaces ``latest`` atomically
(temp file, fsync, ``os.replace``, directory fsync). The pointer is the commit point: a
directory renamed into place whose pointer update never happened is complete but not
resumed from automatically. Retention runs after the pointer moved, never deletes the
checkpoint ``latest`` names nor anything newer, and deletes by first renaming into
``.trash-*`` so a kill mid-deletion never leaves a half-deleted checkpoint that looks
real. Leftover ``.tmp-*``/``.trash-*`` entries are removed when the next run starts.

This module never imports torch.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from runner_checkpoint import faults
from runner_checkpoint.fsutil import atomic_write, fsync_path, write_new
from runner_checkpoint.manifest import FORMAT, FORMAT_VERSION, MANIFEST, CorruptCheckpoint, dumps, read_manifest, seal

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"
NAME = re.compile(r"^step-(\d+)(?:-(\d+))?$")

#: ``write_files(directory) -> {file name: {"size": ..., "sha256": ...}}``; writes, no fsync.
#: A ``sha256`` may be a callable returning it (a hash still being computed): it is called
#: after the files are fsynced, so hashing overlaps the fsyncs.
WriteFiles = Callable[[Path], dict[str, dict[str, Any]]]


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

    def latest_name(self) -> str | None:
        """The name ``latest`` points to, or None (no pointer, or not a checkpoint name)."""
        try:
            text = (self.root / LATEST).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            return None
        return text if NAME.match(text) else None

    def resume_candidates(self) -> tuple[list[Entry], str | None]:
        """Checkpoints to try, best first: the one ``latest`` names, then older ones.

        Returns the candidates and a note when the pointer could not be followed.
        """
        entries = self.entries()
        latest = self.latest_name()
        by_name = {e.name: e for e in entries}
        newest_first = sorted(entries, key=_order, reverse=True)
        if latest is None:
            note = f"{self.root / LATEST} is missing; trying every checkpoint, newest first" if entries else None
            return newest_first, note
        top = by_name.get(latest)
        if top is None:
            return newest_first, f"{self.root / LATEST} names {latest}, which does not exist; trying the others"
        if top.seq < 0:
            return [top, *[e for e in newest_first if e is not top]], None
        return [top, *[e for e in newest_first if e is not top and 0 <= e.seq < top.seq]], None

    # -- writing ---------------------------------------------------------------------

    def _free_name(self, step: int) -> str:
        base = f"step-{step:06d}"
        name, index = base, 1
        while (self.root / name).exists():
            index += 1
            name = f"{base}-{index}"
        return name

    def commit(self, step: int, write_files: WriteFiles, meta: dict[str, Any]) -> Entry:
        """Write a checkpoint crash-safely and point ``latest`` at it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._last_seq is None:
            self._last_seq = max((e.seq for e in self.entries()), default=0)
        seq = self._last_seq + 1
        name = self._free_name(step)
        tmp = self.root / f"{TMP_PREFIX}{name}-{os.getpid()}"
        final = self.root / name
        tmp.mkdir()
        try:
            files = write_files(tmp)
            faults.point("before_fsync")
            for file in files:
                fsync_path(tmp / file)
            for entry in files.values():
                if callable(entry["sha256"]):
                    entry["sha256"] = entry["sha256"]()
            manifest = seal(
                {"format": FORMAT, "format_version": FORMAT_VERSION, "name": name, "seq": seq, **meta, "files": files}
            )
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
        atomic_write(self.root / LATEST, f"{name}\n".encode(), before_replace=lambda: faults.point("after_pointer_tmp"))
        faults.point("after_pointer_update")
        return Entry(name, final, manifest)

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
