"""Entry module of the ``runner-datasets`` plugin: registers datasets and transforms by name.

Imports nothing heavy: factories and parameter classes are lazy ``module:attr`` references,
so ``runner --help`` does not pay for building attrs classes.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl

_DATASETS = (
    (
        "digits",
        "runner_datasets.digits:build",
        "runner_datasets.params:DigitsParams",
        "scikit-learn's 8x8 handwritten digits (bundled, no download), stratified train/val/test split.",
    ),
    (
        "synthetic",
        "runner_datasets.synthetic:build",
        "runner_datasets.params:SyntheticParams",
        "Deterministic synthetic classification or regression tensors of any size.",
    ),
    (
        "sequences",
        "runner_datasets.sequences:build",
        "runner_datasets.params:SequencesParams",
        "Generated variable-length token sequences (label: the most frequent marker token), for pad + rnn.",
    ),
    ("tensors", "runner_datasets.sources:tensors", "runner_datasets.params:TensorsParams", None),
    ("csv", "runner_datasets.sources:csv_dataset", "runner_datasets.params:CsvParams", None),
    ("jsonl", "runner_datasets.sources:jsonl_dataset", "runner_datasets.params:JsonlParams", None),
    ("list", "runner_datasets.sources:list_dataset", "runner_datasets.params:ListParams", None),
    ("generator", "runner_datasets.sources:generator_dataset", "runner_datasets.params:GeneratorParams", None),
    ("processed", "runner_datasets.sources:processed", "runner_datasets.params:ProcessedParams", None),
    ("concat", "runner_datasets.combinators:concat", "runner_datasets.params:ConcatParams", None),
    ("subset", "runner_datasets.combinators:subset", "runner_datasets.params:SubsetParams", None),
    ("random_split", "runner_datasets.combinators:random_split", "runner_datasets.params:RandomSplitParams", None),
)

_TRANSFORMS = (
    ("normalize", "runner_datasets.transforms:Normalize", "runner_datasets.params:NormalizeParams"),
    ("random_noise", "runner_datasets.transforms:RandomNoise", "runner_datasets.params:RandomNoiseParams"),
    ("map", "runner_datasets.transforms:Map", "runner_datasets.params:MapParams"),
    ("shuffle_buffer", "runner_datasets.transforms:shuffle_buffer", "runner_datasets.params:ShuffleBufferParams"),
    ("prefetch", "runner_datasets.transforms:prefetch", "runner_datasets.params:PrefetchParams"),
)


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register the sources (digits, synthetic, sequences, tensors, csv, jsonl, list, generator,
    processed) and combinators (concat, subset, random_split)."""
    for name, factory, params, doc in _DATASETS:
        register(name, factory, params=params, doc=doc)


@hookimpl
def register_transforms(register: RegisterComponent) -> None:
    """Register normalize, random_noise, map, shuffle_buffer and prefetch."""
    for name, factory, params in _TRANSFORMS:
        register(name, factory, params=params)


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    """Register csv_to_tensors."""
    register(
        "csv_to_tensors",
        "runner_datasets.processors:CsvToTensors",
        params="runner_datasets.params:CsvToTensorsParams",
    )
