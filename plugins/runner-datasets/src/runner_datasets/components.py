"""Every component of the plugin, each declared once: fields are the recipe parameters,
the docstring the documentation, ``build`` makes the object.

Torch-free, so recipes validate without torch: each ``build`` imports the module that does
the work (:mod:`runner_datasets.digits`, :mod:`~runner_datasets.sources`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import Stage, at_least, check, component, param

if TYPE_CHECKING:
    from runner import Prefetch as PrefetchTransform
    from runner import Registry
    from runner import ShuffleBuffer as ShuffleBufferTransform
    from runner_datasets import processors, sources, transforms
    from runner_datasets.sequences import SequenceDataset
    from runner_datasets.tensors import MetaTensorDataset

Split = str
"""A split name, parsed like helios ``DatasetSplit.from_str``: ``train``, ``val`` (also
``valid``/``validation``) or ``test`` (also ``testing``), case-insensitive."""


def valid_split(value: Any) -> str | None:
    """Constraint: a split name :meth:`runner.Stage.from_str` accepts (the error lists them)."""
    if value is None:
        return None
    try:
        Stage.from_str(str(value))
    except ValueError as exc:
        return str(exc)
    return None


DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")


def dtype_name(value: Any) -> str | None:
    """Constraint: a torch dtype name."""
    return None if value in DTYPES else f"expected one of {', '.join(DTYPES)}, found {value!r}"


def parse_split(value: str) -> str:
    """The canonical split name (``"train"``, ``"val"`` or ``"test"``) of ``value``."""
    return Stage.from_str(value).value


def fraction(value: Any) -> str | None:
    """Constraint: ``0 <= value < 1``."""
    return None if 0 <= value < 1 else f"must be at least 0 and below 1, found {value}"


@component
class Digits:
    """scikit-learn's 8x8 handwritten digits (bundled, no download), stratified train/val/test split.

    1797 images of 10 classes; the split depends only on the fractions and ``split_seed``.
    """

    split: str = param(doc="Which part of the stratified train/val/test split to load.", check=valid_split)
    val_fraction: float = param(0.15, doc="Fraction of each class held out for validation.", check=fraction)
    test_fraction: float = param(0.15, doc="Fraction of each class held out for testing.", check=fraction)
    split_seed: int = param(0, doc="Seed of the split; the split never depends on the run seed.")
    flatten: bool = param(True, doc="Samples as 64 features (true) or 1x8x8 images for a CNN (false).")

    @check("val_fraction", "test_fraction")
    def _leaves_training_data(self) -> str | None:
        if self.val_fraction + self.test_fraction >= 1:
            return (
                "val_fraction + test_fraction must be below 1 to leave training data, "
                f"found {self.val_fraction} + {self.test_fraction}"
            )
        return None

    def build(self) -> MetaTensorDataset:
        from runner_datasets import digits

        return digits.build(
            split=self.split,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            split_seed=self.split_seed,
            flatten=self.flatten,
        )


@component
class Synthetic:
    """Deterministic synthetic classification or regression tensors of any size.

    Classification: Gaussian class clusters; regression: a random linear map plus noise.
    """

    split: str = param(
        doc="Which split to generate; each split holds different samples of the same problem.", check=valid_split
    )
    task: Literal["classification", "regression"] = param("classification", doc="Kind of targets to generate.")
    num_samples: int = param(1000, doc="Samples in this split.", check=at_least(1))
    num_features: int = param(20, doc="Features per sample.", check=at_least(1))
    num_classes: int = param(2, doc="Classes (classification only).", check=at_least(2))
    num_targets: int = param(1, doc="Regression targets per sample (regression only).", check=at_least(1))
    noise: float = param(
        0.5,
        doc="Standard deviation of Gaussian noise on the features (classification) or targets (regression).",
        check=at_least(0),
    )
    data_seed: int = param(0, doc="Seed of the problem and its samples; independent of the run seed.")

    def build(self) -> MetaTensorDataset:
        from runner_datasets import synthetic

        return synthetic.build(
            split=self.split,
            task=self.task,
            num_samples=self.num_samples,
            num_features=self.num_features,
            num_classes=self.num_classes,
            num_targets=self.num_targets,
            noise=self.noise,
            data_seed=self.data_seed,
        )


@component
class Sequences:
    """Generated variable-length token sequences labelled by their most frequent marker token
    (for the pad collate and the rnn model)."""

    split: str = param(doc="Which split to generate; each split holds different sequences.", check=valid_split)
    num_samples: int = param(1000, doc="Sequences in this split.", check=at_least(1))
    min_len: int = param(4, doc="Shortest sequence length.", check=at_least(1))
    max_len: int = param(
        32, doc="Longest sequence length (lengths are uniform in [min_len, max_len]).", check=at_least(1)
    )
    vocab_size: int = param(
        16,
        doc="Token ids 0..vocab_size-1: 0 is never generated (padding), 1..num_classes are the markers.",
        check=at_least(4),
    )
    num_classes: int = param(
        2, doc="Classes, one marker token each; the label is the most frequent marker.", check=at_least(2)
    )
    data_seed: int = param(0, doc="Seed of the samples; independent of the run seed.")

    @check("min_len", "max_len")
    def _lengths_ordered(self) -> str | None:
        return (
            None
            if self.min_len <= self.max_len
            else f"max_len ({self.max_len}) must be at least min_len ({self.min_len})"
        )

    @check("vocab_size", "num_classes")
    def _markers_fit(self) -> str | None:
        if self.vocab_size >= self.num_classes + 2:
            return None
        return (
            f"vocab_size ({self.vocab_size}) must be at least num_classes + 2 ({self.num_classes + 2}): "
            "padding (0), one marker token per class and a filler token"
        )

    def build(self) -> SequenceDataset:
        from runner_datasets import sequences

        return sequences.build(
            split=self.split,
            num_samples=self.num_samples,
            min_len=self.min_len,
            max_len=self.max_len,
            vocab_size=self.vocab_size,
            num_classes=self.num_classes,
            data_seed=self.data_seed,
        )


# -- sources -------------------------------------------------------------------------


@component
class Tensors:
    """Tensors from a .safetensors, .npz or .pt file (loaded without pickle), keys mapped to sample fields."""

    path: str = param(doc="The file: .safetensors, .npz or .pt (torch.load with weights_only=True).", path=True)
    fields: list[str] = param([], doc="Keys of the file that make each sample, in order (default: every key, sorted).")
    split: str | None = param(
        None, doc="Optional split name; with key prefixes '<split>/' picks that split's keys.", check=valid_split
    )

    def build(self) -> MetaTensorDataset:
        from runner_datasets import sources

        return sources.tensors(path=self.path, fields=self.fields, split=self.split)


@component
class Csv:
    """Columns of a CSV file (with a header row) as named feature and label tensors."""

    path: str = param(doc="The CSV file; the first row names the columns.", path=True)
    features: list[str] = param([], doc="Feature columns, in order (default: every column but the label).")
    label: str | None = param(None, doc="Label column; samples are (features, label) with it, (features,) without.")
    dtype: str = param("float32", doc="Torch dtype of the features.", check=dtype_name)
    label_dtype: str = param("int64", doc="Torch dtype of the label ('float32' for regression).", check=dtype_name)
    delimiter: str = param(",", doc="Field delimiter.")
    split: str | None = param(
        None, doc="Optional split name (documentation only for single-file sources).", check=valid_split
    )

    def build(self) -> MetaTensorDataset:
        from runner_datasets import sources

        return sources.csv_dataset(
            path=self.path,
            features=self.features,
            label=self.label,
            dtype=self.dtype,
            label_dtype=self.label_dtype,
            delimiter=self.delimiter,
            split=self.split,
        )


@component
class Jsonl:
    """Fields of a JSON-lines file (one object per line) as named feature and label tensors."""

    path: str = param(doc="The .jsonl file: one JSON object per line.", path=True)
    features: list[str] = param(doc="Fields that make the features, in order (numbers or lists of numbers).")
    label: str | None = param(None, doc="Label field; samples are (features, label) with it, (features,) without.")
    dtype: str = param("float32", doc="Torch dtype of the features.", check=dtype_name)
    label_dtype: str = param("int64", doc="Torch dtype of the label ('float32' for regression).", check=dtype_name)
    split: str | None = param(None, doc="Optional split name.", check=valid_split)

    def build(self) -> MetaTensorDataset:
        from runner_datasets import sources

        return sources.jsonl_dataset(
            path=self.path,
            features=self.features,
            label=self.label,
            dtype=self.dtype,
            label_dtype=self.label_dtype,
            split=self.split,
        )


@component
class List:
    """A map-style dataset over a list (tensorpack DataFromList): inline items or a producer."""

    items: list[Any] = param([], doc="Inline samples (numbers, lists, tables); used when no producer is set.")
    producer: str | None = param(
        None,
        doc="A registered function (register_functions) returning the list, called with kwargs.",
        registered="function",
    )
    kwargs: dict[str, Any] = param({}, doc="Keyword arguments of the producer.")
    split: str | None = param(None, doc="Passed to the producer as split= when set.", check=valid_split)

    def build(self, registry: Registry) -> sources.ListDataset:
        from runner_datasets import sources

        return sources.list_dataset(
            items=self.items, producer=self.producer, kwargs=self.kwargs, split=self.split, registry=registry
        )


@component
class Generator:
    """An iterable dataset over a generator function (tensorpack DataFromGenerator)."""

    producer: str = param(
        doc="A registered function (register_functions) returning an iterable of samples, called with kwargs.",
        registered="function",
    )
    kwargs: dict[str, Any] = param({}, doc="Keyword arguments of the producer.")
    length: int | None = param(None, doc="Samples per pass when known (enables len() and epochs).", check=at_least(0))
    split: str | None = param(None, doc="Passed to the producer as split= when set.", check=valid_split)

    def build(self, registry: Registry) -> sources.GeneratorDataset:
        from runner_datasets import sources

        return sources.generator_dataset(
            producer=self.producer, kwargs=self.kwargs, length=self.length, split=self.split, registry=registry
        )


@component
class Processed:
    """The merged output of a [[process]] step, read from the processing cache."""

    output: str = param(doc="Output name of the [[process]] step (its 'output', default the processor name).")
    fields: list[str] = param([], doc="Tensors that make each sample, in order (default: every one, sorted).")
    cache_dir: str | None = param(None, doc="Cache directory (default: $RUNNER_CACHE_DIR, else the user cache).")

    def build(self) -> Any:
        """In-memory tensors, or records (a RecordDataset) for an arrow or parquet output."""
        from runner_datasets import sources

        return sources.processed(output=self.output, fields=self.fields, cache_dir=self.cache_dir)


@component
class ArrowShards:
    """A sharded stream of Arrow IPC files, memory-mapped: data larger than memory.

    Shards and rows are shuffled per epoch by seed; ranks take contiguous blocks and loader
    workers whole batches, so every sample comes once per epoch and a resume starts exactly
    where the checkpoint stopped without reading what it skips. Yields whole batches (no
    collate, batch transforms only). Needs pyarrow (runner-datasets[arrow]).
    """

    path: list[str] = param(
        [],
        doc="Shard files, directories of *.arrow shards or glob patterns (relative to the recipe file).",
        path="glob",
    )
    output: str | None = param(
        None, doc="Or: the output of a [[process]] step written with format = 'arrow', read from the cache."
    )
    cache_dir: str | None = param(
        None, doc="Cache directory of output (default: $RUNNER_CACHE_DIR, else the user cache)."
    )
    fields: list[str] = param([], doc="Columns that make each batch, in order (default: every column).")
    shuffle: bool = param(True, doc="Shuffle shard order and rows within shards, per epoch by seed.")

    @check("path", "output")
    def _one_source(self) -> str | None:
        if bool(self.path) == bool(self.output):
            return "set path (shard files) or output (a processed output), exactly one"
        return None

    def build(self, seed: int = 0) -> Any:
        """The stream; the loader then tells it its rank, world size and batch size."""
        from runner_datasets import arrow_shards

        return arrow_shards.from_recipe(
            path=self.path,
            output=self.output,
            cache_dir=self.cache_dir,
            fields=self.fields,
            shuffle=self.shuffle,
            seed=seed,
        )


# -- combinators ---------------------------------------------------------------------


@component
class Concat:
    """Several datasets one after another."""

    datasets: list[dict[str, Any]] = param(doc="Dataset tables ({ name = ..., ... }), concatenated in order.")

    def build(self, build_dataset: Any = None) -> Any:
        """``build_dataset`` builds the nested tables (runner passes it)."""
        from runner_datasets import combinators

        return combinators.concat(datasets=self.datasets, build_dataset=build_dataset)


@component
class Subset:
    """A subset of a dataset by indices or by a [start, stop) range."""

    dataset: dict[str, Any] = param(doc="The dataset table ({ name = ..., ... }).")
    indices: list[int] = param([], doc="Indices to keep, in order (wins over start/stop).")
    start: int = param(0, doc="First index kept (without indices).", check=at_least(0))
    stop: int | None = param(None, doc="One past the last index kept (default: the end).", check=at_least(0))

    def build(self, build_dataset: Any = None) -> Any:
        from runner_datasets import combinators

        return combinators.subset(
            dataset=self.dataset,
            indices=self.indices,
            start=self.start,
            stop=self.stop,
            build_dataset=build_dataset,
        )


@component
class RandomSplit:
    """One part of a seeded random split of a dataset by fractions."""

    dataset: dict[str, Any] = param(doc="The dataset table ({ name = ..., ... }).")
    fractions: list[float] = param(doc="Fractions of the parts (summing to 1), e.g. [0.8, 0.1, 0.1].")
    part: int | str = param(doc="Which part: its number (0, 1, ...) or a split name (train = 0, val = 1, test = 2).")
    split_seed: int = param(0, doc="Seed of the split (independent of the run seed).")

    def build(self, build_dataset: Any = None) -> Any:
        from runner_datasets import combinators

        return combinators.random_split(
            dataset=self.dataset,
            fractions=self.fractions,
            part=self.part,
            split_seed=self.split_seed,
            build_dataset=build_dataset,
        )


# -- transforms ----------------------------------------------------------------------


@component
class Normalize:
    """(x - mean) / std on one sample field (deterministic; folded into in-memory tensors)."""

    mean: list[float] = param(doc="Mean: one value, or one per feature (last dimension).")
    std: list[float] = param(doc="Standard deviation: one value, or one per feature.")
    field: int = param(0, doc="Which field of the sample tuple to normalize.", check=at_least(0))

    def build(self) -> transforms.Normalize:
        from runner_datasets import transforms

        return transforms.Normalize(mean=self.mean, std=self.std, field=self.field)


@component
class RandomNoise:
    """Adds Gaussian noise to one field, drawn from the sample's (seed, epoch, index) RNG."""

    std: float = param(0.1, doc="Standard deviation of the noise.", check=at_least(0))
    field: int = param(0, doc="Which field of the sample tuple.", check=at_least(0))

    def build(self) -> transforms.RandomNoise:
        from runner_datasets import transforms

        return transforms.RandomNoise(std=self.std, field=self.field)


@component
class Map:
    """A user function applied to every sample (dataflow map), or to every batch with batch = true."""

    fn: str = param(
        doc="A registered function (register_functions) called as fn(sample, rng) (or fn(batch, rng)).",
        registered="function",
    )
    batch: bool = param(False, doc="Apply to collated batches instead of samples.")

    def build(self, registry: Registry) -> transforms.Map:
        from runner_datasets import transforms

        return transforms.Map(fn=self.fn, batch=self.batch, registry=registry)


@component
class ShuffleBuffer:
    """Shuffles an iterable source through a buffer (tensorpack LocallyShuffleData), seeded per epoch."""

    size: int = param(1000, doc="Buffer size in samples.", check=at_least(1))

    def build(self) -> ShuffleBufferTransform:
        from runner import ShuffleBuffer

        return ShuffleBuffer(self.size)


@component
class Prefetch:
    """Runs the pipeline in background worker processes (tensorpack PrefetchData)."""

    processes: int = param(2, doc="Worker processes (the loader's num_workers, at least this).", check=at_least(1))
    buffer: int = param(2, doc="Batches in flight per process (prefetch_factor).", check=at_least(1))

    def build(self) -> PrefetchTransform:
        from runner import Prefetch

        return Prefetch(self.processes, self.buffer)


# -- processors ----------------------------------------------------------------------


@component
class CsvToTensors:
    """[[process]] step: parses CSV files (one shard per file) into feature and label tensors."""

    features: list[str] = param([], doc="Feature columns (default: every column but the label).")
    label: str | None = param(None, doc="Label column.")
    dtype: str = param("float32", doc="Torch dtype of the features.", check=dtype_name)
    label_dtype: str = param("int64", doc="Torch dtype of the label.", check=dtype_name)

    def build(self) -> processors.CsvToTensors:
        from runner_datasets import processors

        return processors.CsvToTensors(
            features=self.features, label=self.label, dtype=self.dtype, label_dtype=self.label_dtype
        )
