"""The model weights a checkpoint holds, for ``runner predict``/``export --checkpoint`` and
``runner.load(..., checkpoint=...)``. Public API of runner-checkpoint; importing this
module never imports torch (only :func:`load_model_weights` does).

- :func:`find_checkpoint` says which checkpoint directory ``best``, ``last`` or a path
  names in a run directory;
- :func:`load_model_weights` reads that checkpoint's model state dict: only the files the
  model's tensors live in, each checked against the manifest's sha256 before use. Nothing
  is unpickled.

The plugin answers runner's ``load_model_weights`` hook with them (see ``plugin.py``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import RunnerError
from runner_checkpoint.fsutil import NotRegularFile, read_regular
from runner_checkpoint.manifest import MANIFEST, CorruptCheckpoint, check_file, read_manifest, sha256
from runner_checkpoint.store import CHECKPOINTS, Entry, Store

if TYPE_CHECKING:
    import torch

#: What ``which`` may name besides a path.
CHOICES = ("best", "last")


def _store(run_dir: Path) -> Store:
    return Store(run_dir / CHECKPOINTS)


def _last(store: Store) -> Entry:
    entries = [e for e in store.entries() if e.manifest is not None]
    if not entries:
        raise RunnerError(f"{store.root}: no checkpoints (train with a [checkpoint] table)")
    latest = store.latest_name()
    return next((e for e in entries if e.name == latest), max(entries, key=lambda e: (e.seq, e.step)))


def _best(store: Store) -> Entry:
    entries = [e for e in store.entries() if e.manifest is not None]
    if not entries:
        raise RunnerError(f"{store.root}: no checkpoints (train with a [checkpoint] table)")
    ranked = []
    for entry in entries:
        monitor = (entry.manifest or {}).get("monitor")
        if isinstance(monitor, dict) and isinstance(monitor.get("value"), (int, float)):
            value = float(monitor["value"])
            if math.isfinite(value):
                ranked.append((value, str(monitor.get("mode", "max")), str(monitor.get("name")), entry))
    if not ranked:
        raise RunnerError(
            f"{store.root}: no checkpoint recorded a monitored metric, so none is best; train with "
            '[checkpoint] monitor = "val/main/accuracy" (and keep_best = 1 to keep it)'
        )
    names = {name for _, _, name, _ in ranked}
    if len(names) > 1:
        raise RunnerError(
            f"{store.root}: checkpoints monitored different metrics ({', '.join(sorted(names))}); "
            "name one with --checkpoint PATH"
        )
    mode = ranked[-1][1]
    sign = -1.0 if mode == "max" else 1.0
    return min(ranked, key=lambda item: (sign * item[0], -item[3].seq))[3]


def find_checkpoint(run_dir: Path, which: str) -> Path | None:
    """The checkpoint directory ``which`` names for the run in ``run_dir``: ``"last"`` (the
    one ``latest`` points to), ``"best"`` (the best monitored value among the kept ones),
    a checkpoint directory, or a ``checkpoints`` directory's ``latest``; None when
    ``which`` is nothing of runner-checkpoint's."""
    if which == "last":
        return _last(_store(run_dir)).path
    if which == "best":
        return _best(_store(run_dir)).path
    path = Path(which)
    if path.is_dir() and (path / MANIFEST).exists():
        return path
    if path.is_dir() and (path / CHECKPOINTS).is_dir():  # another run directory: its latest
        return _last(_store(path)).path
    return None


def describe(checkpoint: Path) -> str:
    """`` (step 120, val/main/accuracy 0.9721)``: what the manifest says of a checkpoint."""
    try:
        manifest = read_manifest(checkpoint)
    except CorruptCheckpoint:
        return ""
    parts = [f"step {manifest.get('step')}"]
    monitor = manifest.get("monitor")
    if isinstance(monitor, dict) and isinstance(monitor.get("value"), (int, float)):
        parts.append(f"{monitor.get('name')} {float(monitor['value']):.4g}")
    return f" ({', '.join(parts)})"


def _references(node: Any, found: set[str]) -> None:
    """The tensor files a skeleton subtree refers to (``{"$t": [file, key]}``)."""
    if isinstance(node, dict):
        ref = node.get("$t") if len(node) == 1 else None
        if isinstance(ref, list) and len(ref) == 2 and isinstance(ref[0], str):
            found.add(ref[0])
            return
        for value in node.values():
            _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)


def load_model_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The model's state dict saved in ``checkpoint`` (a checkpoint directory).

    Reads the manifest, the JSON skeleton and only the tensor files holding the model's
    weights, each verified against its sha256 before use (a :class:`CorruptCheckpoint`
    lists what does not match).
    """
    from runner_checkpoint import codec, tensorfile
    from runner_checkpoint.checkpoint import STATE_FORMAT_VERSION, STATE_JSON

    name = checkpoint.name
    manifest = read_manifest(checkpoint)
    files: dict[str, dict[str, Any]] = manifest["files"]
    if STATE_JSON not in files:
        raise CorruptCheckpoint(name, [f"{STATE_JSON}: not listed in the manifest"])
    try:
        raw = read_regular(checkpoint / STATE_JSON)
    except (OSError, NotRegularFile) as exc:
        raise CorruptCheckpoint(name, [f"{STATE_JSON}: unreadable: {exc}"]) from None
    problem = check_file(checkpoint / STATE_JSON, files[STATE_JSON], sha256(raw))
    if problem is not None:
        raise CorruptCheckpoint(name, [problem])
    try:
        body = json.loads(raw.decode("utf-8"))
        if not isinstance(body, dict) or body.get("format_version") != STATE_FORMAT_VERSION:
            raise ValueError("unsupported state format")
        skeleton = body["state"]["model"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptCheckpoint(name, [f"{STATE_JSON}: no model weights ({exc})"]) from None
    needed: set[str] = set()
    _references(skeleton, needed)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    problems = []
    for file in sorted(needed):
        entry = files.get(file)
        if entry is None:
            problems.append(f"{file}: not listed in the manifest")
            continue
        try:
            tensors[file], hasher = tensorfile.read_hashing(checkpoint / file, entry["size"])
        except (tensorfile.TensorFileError, NotRegularFile, OSError) as exc:
            problems.append(check_file(checkpoint / file, entry) or f"{file}: {exc}")
            continue
        problem = check_file(checkpoint / file, entry, hasher.result())
        if problem is not None:
            problems.append(problem)
    shard_files = sorted(file for file in files if "/" in file)  # a sharded checkpoint (fsdp): dcp/...
    for file in shard_files:
        problem = check_file(checkpoint / file, files[file], label=file)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise CorruptCheckpoint(name, problems)
    try:
        state = codec.decode(skeleton, tensors)
        if codec.shard_refs(state):  # the model's shards, read whole in this process
            from runner_checkpoint import sharded

            whole = sharded.read_full(checkpoint, prefix="model/")
            state = codec.fill_shards(state, whole)
    except (codec.CodecError, KeyError, ValueError) as exc:
        raise CorruptCheckpoint(name, [f"unusable model weights: {type(exc).__name__}: {exc}"]) from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(name, ["the model weights are not a table"])
    return state
