"""Record shards of the processing cache: Arrow IPC (``format = "arrow"``) and Parquet
(``format = "parquet"``), for outputs that are not only numeric arrays.

A processor may return, for these formats, a mapping of column names to columns (any
lists: strings, ragged lists, nested tables, numbers, numpy arrays or tensors, rows
aligned), a list of records (one mapping per row), or a ``pyarrow.Table``. Multi-dimensional
arrays become (nested) fixed-size lists, so a ``(rows, 3, 4)`` array keeps its shape.

Writing is deterministic: the same rows give the same bytes (no timestamps, one record
batch / row group per shard, no compression for Arrow so shards can be memory-mapped and
read without copying). pyarrow is imported only here, when a step uses these formats
(``pip install 'runner-core[parquet]'``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runner._contract.errors import DataError

#: The cache formats this module writes and reads.
RECORD_FORMATS = ("arrow", "parquet")


def require_pyarrow(what: str) -> Any:
    """The ``pyarrow`` module, or a one-line error saying how to install it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise DataError(f"{what} needs pyarrow: pip install 'runner-core[parquet]'") from exc
    return pyarrow


def _column(pa: Any, values: Any) -> Any:
    """One column as a pyarrow array: tensors and numpy arrays keep their trailing shape."""
    if hasattr(values, "detach") and hasattr(values, "numpy"):  # a torch tensor
        values = values.detach().cpu().numpy()
    if hasattr(values, "ndim") and hasattr(values, "reshape"):  # a numpy array
        import numpy as np

        array = np.ascontiguousarray(values)
        if array.ndim <= 1:
            return pa.array(array)
        flat: Any = pa.array(array.reshape(-1))
        for size in reversed(array.shape[1:]):
            flat = pa.FixedSizeListArray.from_arrays(flat, int(size))
        return flat
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return pa.array(list(values))


def to_table(data: Any, where: str) -> Any:
    """``data`` (see the module documentation) as a ``pyarrow.Table``; a column that cannot
    be converted, or columns of different lengths, raise a :class:`DataError` that starts
    with ``where`` and names the field."""
    pa = require_pyarrow(where)
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, Mapping):
        columns = {str(name): values for name, values in data.items()}
    elif isinstance(data, Sequence) and not isinstance(data, str) and all(isinstance(r, Mapping) for r in data):
        names: dict[str, None] = {}
        for record in data:
            names.update(dict.fromkeys(str(k) for k in record))
        columns = {name: [record.get(name) for record in data] for name in names}
    else:
        raise DataError(
            f"{where}: expected a mapping of field names to columns, a list of records or a pyarrow.Table, "
            f"found {type(data).__name__}"
        )
    arrays = {}
    for name, values in columns.items():
        try:
            arrays[name] = _column(pa, values)
        except Exception as exc:
            raise DataError(f"{where}: field {name!r}: cannot store it: {type(exc).__name__}: {exc}") from exc
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name!r}: {length}" for name, length in lengths.items())
        raise DataError(f"{where}: fields have different numbers of rows ({shown}); rows must be aligned")
    return pa.table(arrays)


def write_table(table: Any, path: Path, fmt: str) -> None:
    """Write ``table`` to ``path`` as one Arrow IPC file or Parquet file, deterministically."""
    pa = require_pyarrow(str(path))
    if fmt == "arrow":
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(1, table.num_rows))
        return
    import pyarrow.parquet as pq

    pq.write_table(table, str(path), row_group_size=max(1, table.num_rows), compression="zstd")


def read_table(path: Path) -> Any:
    """A shard written by :func:`write_table`; Arrow files are memory-mapped (zero copy)."""
    pa = require_pyarrow(str(path))
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".arrow":
            with pa.memory_map(str(path), "r") as source:
                return pa.ipc.open_file(source).read_all()
        import pyarrow.parquet as pq

        return pq.read_table(str(path), memory_map=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot load: {type(exc).__name__}: {exc}") from exc


def concat(tables: list[Any]) -> Any:
    """Shards' tables one after the other (their schemas must agree)."""
    pa = require_pyarrow("merging record shards")
    try:
        return pa.concat_tables(tables, promote_options="default")
    except Exception as exc:
        raise DataError(f"record shards do not share one schema: {type(exc).__name__}: {exc}") from exc


__all__ = ["RECORD_FORMATS", "concat", "read_table", "require_pyarrow", "to_table", "write_table"]
