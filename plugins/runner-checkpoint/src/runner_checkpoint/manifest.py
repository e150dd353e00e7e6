"""``manifest.json``: every file of a checkpoint with its size and sha256, sealed by a digest.

The manifest is written last, into the temporary directory, before the rename that
commits the checkpoint. Its ``digest`` is the sha256 of its own canonical JSON (without
the digest), so an edited manifest is detected as such, and the file hashes it lists
detect a truncated, bit-flipped, replaced or missing file.

A sharded checkpoint (format version 2) also lists the files of its ``dcp/`` folder
(``dcp/rank00000.bin``, ``dcp/metadata.json``): one level of folder, that one only.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from runner import RunnerError
from runner_checkpoint.fsutil import NotRegularFile, read_regular, regular_file_problem, sha256_file

FORMAT = "runner-checkpoint"
FORMAT_VERSION = 1
#: The format version of a checkpoint with sharded tensors (files in ``dcp/``).
SHARDED_FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: File names a manifest may list: plain names inside the checkpoint directory, or inside
#: its ``dcp/`` folder (sharded tensors, see runner_checkpoint.sharded).
SAFE_NAME = re.compile(r"^(dcp/)?[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class CorruptCheckpoint(RunnerError):
    """A checkpoint failed verification; ``problems`` says which file and how."""

    def __init__(self, name: str, problems: list[str]) -> None:
        self.name = name
        self.problems = list(problems)
        super().__init__(f"checkpoint {name} is damaged: " + "; ".join(self.problems))

    def lines(self) -> list[str]:
        return [f"checkpoint {self.name} is damaged:", *(f"  {p}" for p in self.problems)]


def canonical(data: Any) -> bytes:
    """The bytes the digest covers: sorted keys, no spaces, ASCII, no NaN."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seal(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` plus its ``digest``."""
    unsealed = {k: v for k, v in body.items() if k != "digest"}
    return {**unsealed, "digest": sha256(canonical(unsealed))}


def dumps(manifest: dict[str, Any]) -> bytes:
    """The manifest as written to disk (indented for people; the digest does not depend on it)."""
    return (json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def mismatch(name: str, expected: str, actual: str) -> str:
    return f"{name}: sha256 expected {expected}, actual {actual}"


def read_manifest(directory: Path) -> dict[str, Any]:
    """Parse and check ``directory/manifest.json``; raise :class:`CorruptCheckpoint` if it is not sound."""
    name = directory.name
    path = directory / MANIFEST
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: missing"]) from None
    except NotRegularFile as exc:
        raise CorruptCheckpoint(name, [str(exc)]) from None
    except OSError as exc:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: unreadable: {exc}"]) from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: not valid JSON ({exc}); sha256 actual {sha256(raw)}"]) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: not a {FORMAT} manifest"])
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > SHARDED_FORMAT_VERSION:
        raise CorruptCheckpoint(
            name, [f"{MANIFEST}: format version {version!r} is newer than this plugin reads ({SHARDED_FORMAT_VERSION})"]
        )
    recorded = manifest.get("digest")
    try:
        actual = sha256(canonical({k: v for k, v in manifest.items() if k != "digest"}))
    except ValueError as exc:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: {exc}"]) from None
    if recorded != actual:
        raise CorruptCheckpoint(name, [f"{MANIFEST}: digest expected {recorded}, actual {actual} (edited or damaged)"])
    problems = _check_files(manifest.get("files"), sharded=version >= SHARDED_FORMAT_VERSION)
    if problems:
        raise CorruptCheckpoint(name, problems)
    return manifest


def _check_files(files: Any, sharded: bool) -> list[str]:
    if not isinstance(files, dict) or not files:
        return [f"{MANIFEST}: lists no files"]
    problems = []
    for file, entry in files.items():
        if not SAFE_NAME.match(file) or file == MANIFEST or (not sharded and "/" in file):
            problems.append(f"{MANIFEST}: refusing file name {file!r}")
        elif (
            not isinstance(entry, dict)
            or not isinstance(entry.get("size"), int)
            or entry["size"] < 0
            or not isinstance(entry.get("sha256"), str)
            or not _SHA256.match(entry["sha256"])
        ):
            problems.append(f"{MANIFEST}: malformed entry for {file}")
    return problems


def verify(directory: Path) -> list[str]:
    """Problems of a checkpoint (empty when every file matches its manifest), streaming the hashes."""
    try:
        manifest = read_manifest(directory)
    except CorruptCheckpoint as exc:
        return exc.problems
    problems = []
    for file, entry in manifest["files"].items():
        problem = check_file(directory / file, entry, label=file)
        if problem is not None:
            problems.append(problem)
    return problems


def is_sharded(manifest: dict[str, Any]) -> bool:
    """Whether a (checked) manifest lists sharded tensors (files in ``dcp/``)."""
    return any("/" in file for file in manifest.get("files", {}))


def check_file(path: Path, entry: dict[str, Any], digest: str | None = None, label: str | None = None) -> str | None:
    """The problem with one file of a checkpoint, or None; hashes it unless ``digest`` is given.

    Only a regular file is opened: anything else (a FIFO, a directory...) is reported as
    ``NAME is not a regular file (KIND)``. ``label`` names the file in the problem (its
    manifest name, ``dcp/rank00000.bin``; default: its base name)."""
    problem = _check_file(path, entry, digest)
    if problem is not None and label is not None and label != path.name and problem.startswith(path.name):
        problem = label + problem[len(path.name) :]
    return problem


def _check_file(path: Path, entry: dict[str, Any], digest: str | None) -> str | None:
    problem = regular_file_problem(path)
    if problem is not None:
        if problem.endswith(": missing"):
            problem += f" (expected {entry['size']} bytes, sha256 {entry['sha256']})"
        return problem
    if digest is None:
        try:
            size, digest = sha256_file(path)
        except NotRegularFile as exc:  # replaced since it was looked at
            return str(exc)
        except OSError as exc:
            return f"{path.name}: unreadable: {exc.strerror or exc}"
        if size != entry["size"]:
            return (
                f"{path.name}: size expected {entry['size']}, actual {size}; "
                f"sha256 expected {entry['sha256']}, actual {digest}"
            )
    if digest != entry["sha256"]:
        return mismatch(path.name, entry["sha256"], digest)
    return None
