"""Data processing before training (PyMarlin ``DataProcessor``/``DataInterface``):
``[[process]]`` steps, multi-process and rank-sharded execution, a content-addressed cache.

Torch-free to import; shards are read and written with torch/safetensors (tensors) or
pyarrow (records) when a step runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner._processing.cache import Cache, cache_root, load_tensor_file
from runner._processing.steps import DistArgs, StepResult, run_step, run_steps


def load_output(name: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The merged output ``name`` (as written by ``runner process``), by field: tensors for
    the tensor formats, ``pyarrow.ChunkedArray`` columns for ``arrow`` and ``parquet``."""
    return Cache(cache_root(str(cache_dir) if cache_dir else None)).load_output(name)


def output_shards(name: str, cache_dir: str | Path | None = None) -> tuple[list[Path], str]:
    """The shard files of processed output ``name``, in input order, and their format
    (``"safetensors"``, ``"npz"``, ``"arrow"`` or ``"parquet"``): for readers that stream
    them instead of loading the merged output."""
    return Cache(cache_root(str(cache_dir) if cache_dir else None)).output_shards(name)


__all__ = [
    "Cache",
    "DistArgs",
    "StepResult",
    "cache_root",
    "load_output",
    "load_tensor_file",
    "output_shards",
    "run_step",
    "run_steps",
]
