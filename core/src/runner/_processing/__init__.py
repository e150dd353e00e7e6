"""Data processing before training (PyMarlin ``DataProcessor``/``DataInterface``):
``[[process]]`` steps, multi-process and rank-sharded execution, a content-addressed cache.

Torch-free to import; shards are read and written with torch/safetensors when a step runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner._processing.cache import Cache, cache_root, load_tensor_file
from runner._processing.steps import DistArgs, StepResult, run_step, run_steps


def load_output(name: str, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """The merged tensors of processed output ``name`` (as written by ``runner process``)."""
    return Cache(cache_root(str(cache_dir) if cache_dir else None)).load_output(name)


__all__ = ["Cache", "DistArgs", "StepResult", "cache_root", "load_output", "load_tensor_file", "run_step", "run_steps"]
