"""Dataset combinators: ``concat``, ``subset`` and ``random_split`` of nested dataset tables.

Nested tables are validated and built by the framework (``build_dataset``). When the
inputs are in-memory tensors the result is too (one gather or concatenation at build
time), so the loader's fast path still applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from runner import DataError, Stage
from runner_datasets.tensors import MetaTensorDataset

Builder = Callable[[Any, str], Any]


def _tensors(dataset: Any) -> tuple[torch.Tensor, ...] | None:
    from runner import tensors_of

    return tensors_of(dataset)


def _meta(dataset: Any) -> dict[str, Any]:
    return dict(getattr(dataset, "meta", None) or {})


class _Wrapped(torch.utils.data.Dataset[Any]):
    def __init__(self, inner: torch.utils.data.Dataset[Any], meta: dict[str, Any]) -> None:
        self.inner = inner
        self.meta = meta

    def __len__(self) -> int:
        return len(self.inner)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        return self.inner[index]


def _take(dataset: Any, indices: list[int], where: str) -> Any:
    size = len(dataset)
    bad = [i for i in indices if not -size <= i < size]
    if bad:
        raise DataError(f"{where}: indices {bad[:5]} out of range for a dataset of {size} samples")
    tensors = _tensors(dataset)
    if tensors is not None:
        index = torch.as_tensor(indices, dtype=torch.long)
        return MetaTensorDataset(*(t[index] for t in tensors), meta=_meta(dataset))
    return _Wrapped(torch.utils.data.Subset(dataset, indices), _meta(dataset))


def builder(build_dataset: Builder | None, ctx: Any) -> Builder:
    """The engine's nested-dataset builder, or one over the installed plugins (plain Python use)."""
    if build_dataset is not None:
        return build_dataset
    from pathlib import Path

    from runner import BuildContext
    from runner._data.build import dataset_builder
    from runner._plugins.manager import PluginManager

    context = ctx if ctx is not None else BuildContext(recipe=None, seed=0, run_dir=Path("."))  # type: ignore[arg-type]
    return dataset_builder(PluginManager().load().registry, context, "dataset")


def concat(*, datasets: Sequence[Any], build_dataset: Builder) -> Any:
    """The datasets one after another (tensors concatenated when all are in memory)."""
    if not datasets:
        raise DataError("concat: datasets is empty")
    built = [build_dataset(table, f"datasets[{i}]") for i, table in enumerate(datasets)]
    parts = [_tensors(d) for d in built]
    if all(p is not None for p in parts):
        widths = {len(p) for p in parts if p is not None}
        if len(widths) == 1:
            try:
                merged = [torch.cat(column) for column in zip(*parts, strict=True)]
            except RuntimeError as exc:
                raise DataError(f"concat: datasets have incompatible shapes: {exc}") from None
            return MetaTensorDataset(*merged, meta=_meta(built[0]))
    return _Wrapped(torch.utils.data.ConcatDataset(built), _meta(built[0]))


def subset(
    *,
    dataset: Any,
    indices: Sequence[int],
    start: int,
    stop: int | None,
    build_dataset: Builder,
) -> Any:
    """``indices`` of the dataset, or its ``[start, stop)`` range."""
    inner = build_dataset(dataset, "dataset")
    chosen = list(indices) if indices else list(range(start, len(inner) if stop is None else stop))
    if not chosen:
        raise DataError("subset: selects no samples")
    return _take(inner, chosen, "subset")


def part_index(part: int | str, parts: int) -> int:
    """``part`` as a number: an int, a digit string, or a split name (train 0, val 1, test 2)."""
    if isinstance(part, int):
        index = part
    elif part.strip().isdigit():
        index = int(part)
    else:
        try:
            index = list(Stage).index(Stage.from_str(part))
        except ValueError as exc:
            raise DataError(f"random_split: part {part!r}: {exc}") from None
    if not 0 <= index < parts:
        raise DataError(f"random_split: part {part!r} is not one of the {parts} parts (0..{parts - 1})")
    return index


def split_lengths(total: int, fractions: Sequence[float]) -> list[int]:
    """Part sizes: ``floor(fraction * total)``, the remainder given one by one from the first part."""
    if not fractions or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"random_split: fractions must be non-negative and sum to 1, found {list(fractions)}")
    lengths = [int(f * total) for f in fractions]
    for i in range(total - sum(lengths)):
        lengths[i % len(lengths)] += 1
    return lengths


def random_split(
    *,
    dataset: Any,
    fractions: Sequence[float],
    part: int | str,
    split_seed: int,
    build_dataset: Builder,
) -> Any:
    """Part ``part`` of a random split by ``fractions``; the parts are disjoint and cover the
    dataset, and depend only on its length, the fractions and ``split_seed``."""
    inner = build_dataset(dataset, "dataset")
    lengths = split_lengths(len(inner), fractions)
    index = part_index(part, len(lengths))
    order = torch.randperm(len(inner), generator=torch.Generator().manual_seed(split_seed)).tolist()
    begin = sum(lengths[:index])
    return _take(inner, order[begin : begin + lengths[index]], "random_split")
