"""Prediction files: JSON lines or Parquet, one row per input sample with its index.

Rows are ``{"index": i, <output>: value, ...}`` where ``i`` is the sample's position in
the dataset and each output is what the task's ``predict_step`` returned for it (a
number, or nested lists for a vector or a tensor). Files are written under a temporary
name and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from runner._contract.errors import RunnerError

FORMATS = ("jsonl", "parquet")


def format_of(path: Path, requested: str | None) -> str:
    """``requested``, else the file's extension (``.parquet``), else ``jsonl``."""
    if requested is not None:
        return requested
    return "parquet" if path.suffix.lower() in (".parquet", ".pq") else "jsonl"


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.dtype in (torch.float16, torch.bfloat16):
        return tensor.float()
    return tensor


def json_values(tensor: torch.Tensor) -> Any:
    """The tensor as nested lists; float32 values in their shortest form (``0.9986753``,
    which reads back as the same float32), not as the double they widen to."""
    import numpy as np

    tensor = _plain(tensor).cpu()
    if tensor.dtype is torch.float32:
        return tensor.numpy().astype(str).astype(np.float64).tolist()
    return tensor.tolist()


class JsonlWriter:
    """Streams rows to a JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()/abort()
        self.rows = 0

    def write(self, indices: list[int], outputs: dict[str, torch.Tensor]) -> None:
        columns = {name: json_values(value) for name, value in outputs.items()}
        for row, index in enumerate(indices):
            record = {"index": index, **{name: values[row] for name, values in columns.items()}}
            self.file.write(json.dumps(record) + "\n")
        self.rows += len(indices)

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class ParquetWriter:
    """Streams row groups to a Parquet file (pyarrow, ``runner-core[parquet]``)."""

    def __init__(self, path: Path) -> None:
        try:
            import pyarrow
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise RunnerError(
                "--format parquet needs pyarrow: pip install 'runner-core[parquet]' (or write JSON lines)"
            ) from None
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        self.writer: Any = None
        self.rows = 0

    def write(self, indices: list[int], outputs: dict[str, torch.Tensor]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"index": pa.array(indices, type=pa.int64())}
        for name, value in outputs.items():
            columns[name] = _column(_plain(value).cpu())
        table = pa.table(columns)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.tmp), table.schema)
        self.writer.write_table(table.cast(self.writer.schema))
        self.rows += len(indices)

    def close(self) -> None:
        if self.writer is None:
            raise RunnerError("no predictions to write (the data is empty)")
        self.writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.tmp.unlink(missing_ok=True)


def _column(tensor: torch.Tensor) -> Any:
    """A pyarrow array: scalars as they are, vectors as fixed-size lists, higher ranks nested."""
    import pyarrow as pa

    array = tensor.numpy()
    if tensor.dim() == 1:
        return pa.array(array)
    if tensor.dim() == 2:
        return pa.FixedSizeListArray.from_arrays(pa.array(array.reshape(-1)), int(tensor.shape[1]))
    return pa.array(tensor.tolist())


def open_writer(path: Path, fmt: str) -> JsonlWriter | ParquetWriter:
    """A writer for ``fmt`` into ``path`` (its directory created)."""
    if fmt not in FORMATS:
        raise RunnerError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return ParquetWriter(path) if fmt == "parquet" else JsonlWriter(path)
    except OSError as exc:
        raise RunnerError(f"cannot write predictions to {path}: {exc.strerror or exc}") from None
