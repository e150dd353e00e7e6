"""Records in Arrow columns: converting columns for :func:`runner_datasets.arrow_shards.write_shards`,
and the map-style dataset the ``processed`` source serves for record outputs
(``[[process]] format = "arrow"`` or ``"parquet"``: strings, ragged lists, nested fields).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from runner import DataError


def column_array(values: Any) -> Any:
    """A pyarrow array of ``values``: numpy arrays and tensors keep their trailing shape (as
    nested fixed-size lists); lists may hold strings, ragged lists or records."""
    import pyarrow as pa

    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        array = np.ascontiguousarray(values)
        flat: Any = pa.array(array.reshape(-1)) if array.ndim > 1 else pa.array(array)
        for size in reversed(array.shape[1:]):
            flat = pa.FixedSizeListArray.from_arrays(flat, int(size))
        return flat
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    return pa.array(list(values))


def _value(value: Any) -> Any:
    """One cell as a sample value: a list of numbers (ragged or fixed) becomes a tensor,
    strings and records stay Python values."""
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
        return torch.tensor(value)
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        try:
            return torch.tensor(value)
        except (TypeError, ValueError):
            return value
    return value


class RecordDataset(torch.utils.data.Dataset[tuple[Any, ...]]):
    """Rows of an Arrow table as samples: a tuple with one value per field, in ``fields``
    order (numbers as Python numbers, lists of numbers as tensors, strings and nested
    records as Python values). ``meta`` has ``rows`` and ``fields``."""

    def __init__(self, table: Any, fields: Sequence[str], where: str) -> None:
        names = list(table.column_names)
        chosen = list(fields) or names
        for name in chosen:
            if name not in names:
                raise DataError(f"{where}: no field {name!r}; fields: {', '.join(names)}")
        self.table = table.select(chosen)
        self.fields = chosen
        self.meta: dict[str, Any] = {"rows": table.num_rows, "fields": chosen}

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        row = self.table.slice(index, 1).to_pylist()[0]
        return tuple(_value(row[name]) for name in self.fields)
