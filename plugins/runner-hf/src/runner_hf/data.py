"""Datasets: ``hf_dataset`` (rows of a local Hugging Face dataset) and ``tokenized`` (a
``tokenize`` step's cached output as named-field samples)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from runner import DataError


def _num_classes(table: Any, label_column: str | None) -> dict[str, Any]:
    if not label_column or label_column not in table.column_names:
        return {}
    feature = table.features[label_column]
    names = getattr(feature, "names", None)
    if names:
        return {"num_classes": len(names), "classes": list(names)}
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.data.column(label_column)
    if not pa.types.is_integer(column.type):  # class indices only
        return {}
    largest = pc.max(column).as_py()
    return {"num_classes": int(largest) + 1} if largest is not None else {}


class HFRows(Dataset[dict[str, Any]]):
    """Rows of a memory-mapped ``datasets.Dataset`` as dicts (only ``columns`` when given).

    Lists of numbers become tensors, so a collate can pad them; strings stay strings.
    """

    def __init__(self, table: Any, columns: Sequence[str], label_column: str | None) -> None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise DataError(f"hf_dataset: no column {missing}; the dataset has {', '.join(table.column_names)}")
        self.table = table.select_columns(list(columns)) if columns else table
        self.meta: dict[str, Any] = _num_classes(table, label_column)

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.table[int(index)]
        return {
            k: torch.tensor(v) if isinstance(v, list) and v and not isinstance(v[0], str) else v for k, v in row.items()
        }


class Tokenized(Dataset[dict[str, torch.Tensor]]):
    """``{"input_ids": (length,), "labels": ()}`` samples from a ``tokenize`` step's output.

    ``lengths`` (tokens per sample) lets runner-samplers' ``bucket_by_length`` batch similar lengths.
    """

    def __init__(self, data: dict[str, torch.Tensor], output: str) -> None:
        for name in ("input_ids", "length"):
            if name not in data:
                raise DataError(f"tokenized: output {output!r} has no {name!r}; is it a tokenize step's output?")
        self.input_ids = data["input_ids"]
        self.lengths = data["length"].long()
        self.labels = data.get("label")
        self.meta: dict[str, Any] = {}
        if self.labels is not None and self.labels.numel():
            self.meta["num_classes"] = int(self.labels.max()) + 1
        self.lengths_list = self.lengths.tolist()

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = {"input_ids": self.input_ids[index, : self.lengths_list[index]].long()}
        if self.labels is not None:
            sample["labels"] = self.labels[index].long()
        return sample
