"""Reading W&B's offline run files (``run-<id>.wandb``) with wandb's own record types.

The file is W&B's transaction log: a 7-byte header (``:W&B``, magic ``0xBEE1``, version),
then a LevelDB-style log of 32 KiB blocks whose records (checksum, length, type: full,
first, middle, last) carry ``wandb.proto.wandb_internal_pb2.Record`` messages: run,
config, history (one per step), summary, artifact, exit... This is what ``wandb sync``
uploads; wandb 0.30 has no Python reader of its own any more (its service is in Go).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    index, pending = HEADER, b""
    while index + HEADER <= len(data):
        left = BLOCK - index % BLOCK
        if left < HEADER:  # the block's tail is padding
            index += left
            continue
        _, length, kind = struct.unpack("<IHB", data[index : index + HEADER])
        chunk = data[index + HEADER : index + HEADER + length]
        index += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""


def _key(item: Any) -> str:
    return str(item.key) if item.key else ".".join(item.nested_key)


class OfflineRun:
    """What one ``run-<id>.wandb`` file holds, in plain Python values."""

    def __init__(self, path: Path) -> None:
        from wandb.proto import wandb_internal_pb2

        self.path = path
        self.run: Any = None
        self.config: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.artifacts: list[Any] = []
        self.exit_code: int | None = None
        for raw in raw_records(path):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(raw)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
                self._config(record.run.config.update)
            elif kind == "config":
                self._config(record.config.update)
            elif kind == "history":
                self.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "summary":
                self.summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "artifact":
                self.artifacts.append(record.artifact)
            elif kind == "exit":
                self.exit_code = record.exit.exit_code

    def _config(self, items: Any) -> None:
        for item in items:
            value = json.loads(item.value_json)
            # W&B keeps each top-level config key as {"value": ..., "desc": ...} in some versions.
            if isinstance(value, dict) and set(value) <= {"value", "desc"} and "value" in value:
                value = value["value"]
            self.config[_key(item)] = value

    def metric(self, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every history row that logged ``name``."""
        return [(int(row["_step"]), float(row[name])) for row in self.history if name in row]


def offline_runs(run_dir: Path) -> list[OfflineRun]:
    """Every offline W&B run under ``run_dir/wandb``, oldest first."""
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    return [OfflineRun(path) for path in files]
