"""Processors for ``[[process]]`` steps (PyMarlin ``DataProcessor``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from runner import DataError
from runner_datasets.components import Csv


class CsvToTensors:
    """``process(files)``: each CSV file's rows as ``features`` (and ``label``) tensors;
    ``analyze(data)``: row count, per-feature mean and std, label counts."""

    def __init__(
        self, features: Sequence[str] = (), label: str | None = None, dtype: str = "float32", label_dtype: str = "int64"
    ) -> None:
        self.features, self.label, self.dtype, self.label_dtype = list(features), label, dtype, label_dtype

    def process(self, inputs: Sequence[str]) -> dict[str, torch.Tensor]:
        if not inputs:
            raise DataError("csv_to_tensors: needs inputs = [CSV files]")
        parts = [
            Csv(
                path=p, features=self.features, label=self.label, dtype=self.dtype, label_dtype=self.label_dtype
            ).build()
            for p in inputs
        ]
        out = {"features": torch.cat([d.tensors[0] for d in parts])}
        if self.label:
            out["label"] = torch.cat([d.tensors[1] for d in parts])
        return out

    def analyze(self, data: dict[str, Any]) -> dict[str, Any]:
        features = data["features"].double()
        stats: dict[str, Any] = {
            "rows": len(features),
            "feature_mean": [round(v, 6) for v in features.mean(0).tolist()],
            "feature_std": [round(v, 6) for v in features.std(0).tolist()] if len(features) > 1 else [],
        }
        if "label" in data:
            values, counts = torch.unique(data["label"], return_counts=True)
            stats["label_counts"] = {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}
        return stats
