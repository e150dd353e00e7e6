"""Dataset sources: tensor files, CSV, JSON lines, lists, generators and processed outputs.

File sources load everything into aligned in-memory tensors (a :class:`MetaTensorDataset`),
so the loader's batched fast path applies. Every problem with the data names the file,
and the line where there is one: a missing file, a malformed row, a value that is not a
number, or a column that does not exist (with a did-you-mean).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from runner import DataError, Registry, did_you_mean
from runner_datasets.components import parse_split
from runner_datasets.functions import Producer, registered_function
from runner_datasets.tensors import MetaTensorDataset


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise DataError(f"unknown dtype {name!r}")
    return dtype


def _unknown(kind: str, name: str, known: Sequence[str], where: str) -> DataError:
    hint = did_you_mean(name, list(known))
    shown = f" ({hint})" if hint else f"; available: {', '.join(known) or 'none'}"
    return DataError(f"{where}: no {kind} {name!r}{shown}")


def _existing(path: str) -> Path:
    file = Path(path)
    if not file.exists():
        raise DataError(f"{path}: no such file")
    if not file.is_file():
        raise DataError(f"{path}: not a file")
    return file


def infer_meta(tensors: Sequence[torch.Tensor], has_label: bool) -> dict[str, Any]:
    """Sizes models read: ``in_features`` from the first tensor; ``num_classes`` for an integer
    label, ``out_features`` for a float one."""
    meta: dict[str, Any] = {}
    features = tensors[0]
    if features.dim() == 2:
        meta["in_features"] = int(features.shape[1])
    elif features.dim() == 1:
        meta["in_features"] = 1
    if has_label and len(tensors) > 1:
        label = tensors[-1]
        if not label.is_floating_point() and label.numel():
            meta["num_classes"] = int(label.max()) + 1
            meta["task"] = "classification"
        elif label.is_floating_point():
            meta["out_features"] = int(label.shape[1]) if label.dim() == 2 else 1
            meta["task"] = "regression"
    return meta


def aligned(tensors: dict[str, torch.Tensor], fields: Sequence[str], where: str) -> list[torch.Tensor]:
    """``tensors[f]`` for each field, checking names and equal first dimensions."""
    chosen = list(fields) or sorted(tensors)
    for name in chosen:
        if name not in tensors:
            raise _unknown("key", name, sorted(tensors), where)
    picked = [tensors[name] for name in chosen]
    lengths = {name: (len(t) if t.dim() else 0) for name, t in zip(chosen, picked, strict=True)}
    if len(set(lengths.values())) > 1 or 0 in lengths.values():
        shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise DataError(f"{where}: fields must have the same (non-zero) first dimension, found {shown}")
    return picked


# -- tensors -------------------------------------------------------------------------


def tensors(*, path: str, fields: Sequence[str], split: str | None) -> MetaTensorDataset:
    """A ``.safetensors``/``.npz``/``.pt`` file as a dataset; ``.pt`` loads with ``weights_only=True``."""
    from runner import load_tensor_file

    loaded = load_tensor_file(_existing(path))
    if split is not None:
        prefix = f"{parse_split(split)}/"
        scoped = {k[len(prefix) :]: v for k, v in loaded.items() if k.startswith(prefix)}
        if scoped:
            loaded = scoped
    picked = aligned(loaded, fields, path)
    return MetaTensorDataset(*picked, meta=infer_meta(picked, has_label=len(picked) > 1))


# -- csv and jsonl -------------------------------------------------------------------


def _number(text: str, where: str, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: column {column!r}: cannot read {text!r} as a number") from None


def csv_dataset(
    *,
    path: str,
    features: Sequence[str],
    label: str | None,
    dtype: str,
    label_dtype: str,
    delimiter: str,
    split: str | None,
) -> MetaTensorDataset:
    """Rows of a CSV file with a header as ``(features, label)`` samples."""
    file = _existing(path)
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file (expected a header row naming the columns)")
        header = [h.strip() for h in header]
        columns = list(features) or [h for h in header if h != label]
        for name in [*columns, *([label] if label else [])]:
            if name not in header:
                raise _unknown("column", name, header, f"{path}:1")
        feature_at = [header.index(c) for c in columns]
        label_at = header.index(label) if label else None
        rows: list[list[float]] = []
        labels: list[float] = []
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) != len(header):
                raise DataError(f"{where}: malformed row: expected {len(header)} fields, found {len(row)}")
            rows.append([_number(row[i], where, header[i]) for i in feature_at])
            if label_at is not None:
                labels.append(_number(row[label_at], where, header[label_at]))
    if not rows:
        raise DataError(f"{path}: no data rows")
    result = [torch.tensor(rows, dtype=_dtype(dtype))]
    if label_at is not None:
        result.append(torch.tensor(labels, dtype=torch.float64).to(_dtype(label_dtype)))
    meta = infer_meta(result, has_label=label_at is not None)
    meta["features"] = columns
    return MetaTensorDataset(*result, meta=meta)


def _flat(value: Any, where: str, field: str) -> list[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise DataError(f"{where}: field {field!r}: expected a number or a list of numbers, found {value!r}")
    if isinstance(value, list):
        out: list[float] = []
        for item in value:
            out += _flat(item, where, field)
        return out
    return [float(value)]


def jsonl_dataset(
    *,
    path: str,
    features: Sequence[str],
    label: str | None,
    dtype: str,
    label_dtype: str,
    split: str | None,
) -> MetaTensorDataset:
    """Objects of a JSON-lines file as ``(features, label)`` samples (features concatenated)."""
    file = _existing(path)
    rows: list[list[float]] = []
    labels: list[float] = []
    width: int | None = None
    with file.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: expected a JSON object, found {type(record).__name__}")
            for name in [*features, *([label] if label else [])]:
                if name not in record:
                    raise _unknown("field", name, sorted(record), where)
            row = [x for name in features for x in _flat(record[name], where, name)]
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise DataError(f"{where}: features have {len(row)} values, earlier lines had {width}")
            rows.append(row)
            if label:
                labels += _flat(record[label], where, label)[:1]
    if not rows:
        raise DataError(f"{path}: no records")
    result = [torch.tensor(rows, dtype=_dtype(dtype))]
    if label:
        result.append(torch.tensor(labels, dtype=torch.float64).to(_dtype(label_dtype)))
    meta = infer_meta(result, has_label=label is not None)
    meta["features"] = list(features)
    return MetaTensorDataset(*result, meta=meta)


# -- list and generator (tensorpack DataFromList / DataFromGenerator) ---------------------


class ListDataset(torch.utils.data.Dataset[Any]):
    """A map-style dataset over a list of samples (each returned as it is)."""

    def __init__(self, items: Sequence[Any], meta: dict[str, Any] | None = None) -> None:
        self.items = list(items)
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def list_dataset(
    *,
    items: Sequence[Any] = (),
    producer: Producer | None = None,
    kwargs: dict[str, Any] | None = None,
    split: str | None = None,
    registry: Registry | None = None,
) -> ListDataset:
    """Inline ``items``, or the list a registered ``producer`` function returns."""
    if producer is not None:
        extra = {"split": parse_split(split)} if split is not None else {}
        produced = registered_function(producer, registry, "producer")(**(kwargs or {}), **extra)
        items = list(produced)
    if not items:
        raise DataError("list dataset: no items (set items = [...] or a producer that returns some)")
    return ListDataset(items)


class GeneratorDataset(torch.utils.data.IterableDataset[Any]):
    """Calls ``produce(**kwargs)`` for every pass and yields what it yields.

    ``length`` (when known) is the number of samples per pass. The function pickles by
    reference into loader worker processes; the framework splits the stream among
    workers and ranks (every worker runs the producer).
    """

    def __init__(
        self, produce: Callable[..., Any], kwargs: dict[str, Any], length: int | None = None, name: str = ""
    ) -> None:
        self.produce = produce
        self.name = name or getattr(produce, "__name__", repr(produce))
        self.kwargs = dict(kwargs)
        self.length = length
        self.meta: dict[str, Any] = {}

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError(f"generator {self.name!r} has no known length (set length = N)")
        return self.length

    def __iter__(self) -> Iterator[Any]:
        produced = self.produce(**self.kwargs)
        for count, item in enumerate(produced, start=1):
            yield item
            if self.length is not None and count >= self.length:
                return


def generator_dataset(
    *,
    producer: Producer,
    kwargs: dict[str, Any] | None = None,
    length: int | None = None,
    split: str | None = None,
    registry: Registry | None = None,
) -> GeneratorDataset:
    """An iterable over what a registered ``producer`` function yields, every pass."""
    extra = {"split": parse_split(split)} if split is not None else {}
    produce = registered_function(producer, registry, "producer")
    name = producer if isinstance(producer, str) else ""
    return GeneratorDataset(produce, {**(kwargs or {}), **extra}, length, name)


# -- processed outputs -----------------------------------------------------------------


def processed(*, output: str, fields: Sequence[str], cache_dir: str | None) -> Any:
    """The merged output of a ``[[process]]`` step (run ``runner process`` or train the recipe):
    in-memory tensors for the tensor formats, a :class:`~runner_datasets.records.RecordDataset`
    over the Arrow columns for record outputs (``format = "arrow"`` or ``"parquet"``)."""
    from runner import load_output

    loaded = load_output(output, cache_dir)
    if loaded and not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        import pyarrow as pa

        from runner_datasets.records import RecordDataset

        return RecordDataset(pa.table(loaded), fields, f"processed output {output!r}")
    picked = aligned(loaded, fields, f"processed output {output!r}")
    return MetaTensorDataset(*picked, meta=infer_meta(picked, has_label=len(picked) > 1))
