"""Save a run state as a checkpoint directory and load one back, verifying every byte.

Files of a checkpoint:

- ``model.safetensors``: the model's state dict under its own key names (a plain
  weights file any safetensors reader can open);
- ``state.safetensors``: every other tensor (optimizer moments, RNG, pending losses...);
  either file is split into ``...-00001-of-0000N.safetensors`` shards above 64 MB;
- ``state.json``: the JSON skeleton of the whole state, referring to those tensors;
- ``provenance.json``: resolved recipe, plugins and versions;
- ``manifest.json``: size and sha256 of each file above, sealed by its own digest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch

from runner_checkpoint import codec, tensorfile
from runner_checkpoint.fsutil import NotRegularFile, read_regular, regular_file_problem, write_new
from runner_checkpoint.hashing import Hasher
from runner_checkpoint.manifest import CorruptCheckpoint, check_file, read_manifest, sha256
from runner_checkpoint.store import Entry, Store, WriteFiles

STATE_JSON = "state.json"
PROVENANCE_JSON = "provenance.json"
STATE_FORMAT_VERSION = 1


@attrs.frozen
class Loaded:
    """A verified checkpoint: its manifest, the rebuilt state and its provenance."""

    path: Path
    manifest: dict[str, Any]
    state: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


@attrs.frozen
class Encoded:
    """A state split for writing: tensor files, JSON documents, and sharded tensors by key."""

    tensors: dict[str, dict[str, torch.Tensor]]
    documents: dict[str, bytes]
    shards: dict[str, torch.Tensor]


def encode(state: dict[str, Any], provenance: Any) -> Encoded:
    """Split ``state`` into what each file of a checkpoint holds (no I/O)."""
    skeleton, tensors, shards = codec.encode_sharded(state)
    documents = {
        STATE_JSON: _json_bytes({"format_version": STATE_FORMAT_VERSION, "state": skeleton}),
        PROVENANCE_JSON: _json_bytes(provenance),
    }
    return Encoded(tensors, documents, shards)


def file_writer(encoded: Encoded, written: dict[str, dict[str, Any]] | None = None) -> WriteFiles:
    """The store's ``write_files`` for ``encoded``: writes its tensor files and documents and
    lists them, with ``written`` (files already in the directory: the shards)."""

    def write_files(directory: Path) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = dict(written or {})
        for file in sorted(encoded.tensors):
            metadata = {"format": "pt"} if file.startswith("model") else None
            size, hasher = tensorfile.write_hashing(
                directory / file, tensorfile.encode(encoded.tensors[file], metadata)
            )
            files[file] = {"size": size, "sha256": hasher.result}  # resolved after the fsyncs
        for file, data in encoded.documents.items():
            write_new(directory / file, data)
            files[file] = {"size": len(data), "sha256": sha256(data)}
        return files

    return write_files


def save(store: Store, state: dict[str, Any], *, step: int, meta: dict[str, Any], provenance: Any) -> Entry:
    """Write ``state`` (tensors and JSON-like data, no sharded tensors) as a new checkpoint
    in ``store`` (one process; sharded states go through :mod:`runner_checkpoint.saver`)."""
    encoded = encode(state, provenance)
    if encoded.shards:
        raise codec.CodecError(f"the state holds sharded tensors ({next(iter(encoded.shards))}, ...)")
    return store.commit(step, file_writer(encoded), meta)


def load(directory: Path, verify_shards: bool = True) -> Loaded:
    """Verify every file of ``directory`` against its manifest, then rebuild the state.

    Tensor files are read once, hashed while read; nothing is used before every hash matched.
    Raises :class:`CorruptCheckpoint` naming each bad file (expected vs actual sha256).
    Sharded tensors stay in their files (``dcp/``): the state holds a
    :class:`~runner_checkpoint.codec.ShardRef` for each, read by
    :func:`runner_checkpoint.sharded.read` into this run's shards. Their files are hashed
    too unless ``verify_shards`` is false (then only their sizes are checked: with several
    processes one rank hashes them for all).
    """
    name = directory.name
    manifest = read_manifest(directory)
    files: dict[str, dict[str, Any]] = manifest["files"]
    problems: list[str] = []
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    documents: dict[str, bytes] = {}
    pending: dict[str, Hasher] = {}
    for file, entry in files.items():
        path = directory / file
        try:
            if regular_file_problem(path) is not None or path.stat().st_size != entry["size"]:
                problems.append(check_file(path, entry, label=file) or f"{file}: changed while being read")
                continue
            if "/" in file:  # a shard file: read by torch.distributed.checkpoint later, only hashed here
                problem = check_file(path, entry, label=file) if verify_shards else None
                if problem is not None:
                    problems.append(problem)
            elif file.endswith(".safetensors"):
                try:
                    tensors[file], pending[file] = tensorfile.read_hashing(path, entry["size"])
                except tensorfile.TensorFileError as exc:
                    # Malformed: report the hash mismatch if there is one, else the format error.
                    problems.append(check_file(path, entry) or f"{file}: {exc}")
                    continue
            else:
                documents[file] = read_regular(path)
                problem = check_file(path, entry, sha256(documents[file]))
                if problem is not None:
                    problems.append(problem)
        except NotRegularFile as exc:  # replaced by something else since it was looked at
            problems.append(str(exc))
        except OSError as exc:
            problems.append(f"{file}: unreadable: {exc}")
    for file, hasher in pending.items():  # the hashes finish while later files are read
        problem = check_file(directory / file, files[file], hasher.result())
        if problem is not None:
            problems.append(problem)
    for required in (STATE_JSON, PROVENANCE_JSON):
        if required not in files:
            problems.append(f"{required}: not listed in the manifest")
    if problems:
        raise CorruptCheckpoint(name, problems)
    try:
        body = json.loads(documents[STATE_JSON].decode("utf-8"))
        if not isinstance(body, dict) or body.get("format_version") != STATE_FORMAT_VERSION:
            raise ValueError(f"{STATE_JSON}: unsupported state format")
        state = codec.decode(body["state"], tensors)
        provenance = json.loads(documents[PROVENANCE_JSON].decode("utf-8"))
    except (codec.CodecError, ValueError, KeyError, TypeError) as exc:
        raise CorruptCheckpoint(name, [f"unusable content: {exc}"]) from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(name, [f"{STATE_JSON}: the state is not a table"])
    return Loaded(directory, manifest, state, provenance if isinstance(provenance, dict) else {})
