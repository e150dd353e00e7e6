"""Entry module of the ``runner-datasets`` plugin: registers datasets and transforms by name.

Imports nothing heavy: every component is a lazy ``module:attr`` reference to its
declaration in :mod:`runner_datasets.components`, so ``runner --help`` builds no class.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl

_DATASETS = {
    "digits": "Digits",
    "synthetic": "Synthetic",
    "sequences": "Sequences",
    "tensors": "Tensors",
    "csv": "Csv",
    "jsonl": "Jsonl",
    "list": "List",
    "generator": "Generator",
    "processed": "Processed",
    "arrow_shards": "ArrowShards",
    "concat": "Concat",
    "subset": "Subset",
    "random_split": "RandomSplit",
}
_TRANSFORMS = {
    "normalize": "Normalize",
    "random_noise": "RandomNoise",
    "map": "Map",
    "shuffle_buffer": "ShuffleBuffer",
    "prefetch": "Prefetch",
}


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register the sources (digits, synthetic, sequences, tensors, csv, jsonl, list, generator,
    processed, arrow_shards) and combinators (concat, subset, random_split)."""
    for name, declaration in _DATASETS.items():
        register(name, f"runner_datasets.components:{declaration}")


@hookimpl
def register_transforms(register: RegisterComponent) -> None:
    """Register normalize, random_noise, map, shuffle_buffer and prefetch."""
    for name, declaration in _TRANSFORMS.items():
        register(name, f"runner_datasets.components:{declaration}")


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    """Register csv_to_tensors."""
    register("csv_to_tensors", "runner_datasets.components:CsvToTensors")
