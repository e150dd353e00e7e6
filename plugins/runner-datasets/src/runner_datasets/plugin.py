"""Entry module of the ``runner-datasets`` plugin: registers datasets and transforms by name.

Imports only the torch-free parameter classes; factories are lazy references.
"""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_datasets import params as p

_DATASETS = (
    (
        "digits",
        "runner_datasets.digits:build",
        p.DigitsParams,
        "scikit-learn's 8x8 handwritten digits (bundled, no download), stratified train/val/test split.",
    ),
    (
        "synthetic",
        "runner_datasets.synthetic:build",
        p.SyntheticParams,
        "Deterministic synthetic classification or regression tensors of any size.",
    ),
    ("tensors", "runner_datasets.sources:tensors", p.TensorsParams, None),
    ("csv", "runner_datasets.sources:csv_dataset", p.CsvParams, None),
    ("jsonl", "runner_datasets.sources:jsonl_dataset", p.JsonlParams, None),
    ("list", "runner_datasets.sources:list_dataset", p.ListParams, None),
    ("generator", "runner_datasets.sources:generator_dataset", p.GeneratorParams, None),
    ("processed", "runner_datasets.sources:processed", p.ProcessedParams, None),
    ("concat", "runner_datasets.combinators:concat", p.ConcatParams, None),
    ("subset", "runner_datasets.combinators:subset", p.SubsetParams, None),
    ("random_split", "runner_datasets.combinators:random_split", p.RandomSplitParams, None),
)

_TRANSFORMS = (
    ("normalize", "runner_datasets.transforms:Normalize", p.NormalizeParams),
    ("random_noise", "runner_datasets.transforms:RandomNoise", p.RandomNoiseParams),
    ("map", "runner_datasets.transforms:Map", p.MapParams),
    ("shuffle_buffer", "runner_datasets.transforms:shuffle_buffer", p.ShuffleBufferParams),
    ("prefetch", "runner_datasets.transforms:prefetch", p.PrefetchParams),
)


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register the sources (digits, synthetic, tensors, csv, jsonl, list, generator,
    processed) and combinators (concat, subset, random_split)."""
    for name, factory, params, doc in _DATASETS:
        register(name, factory, params=params, doc=doc or params.__doc__)


@hookimpl
def register_transforms(register: RegisterComponent) -> None:
    """Register normalize, random_noise, map, shuffle_buffer and prefetch."""
    for name, factory, params in _TRANSFORMS:
        register(name, factory, params=params, doc=params.__doc__)


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    """Register csv_to_tensors."""
    register(
        "csv_to_tensors",
        "runner_datasets.processors:CsvToTensors",
        params=p.CsvToTensorsParams,
        doc=p.CsvToTensorsParams.__doc__,
    )
