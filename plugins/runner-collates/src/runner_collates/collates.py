"""Collate functions: ``collate(samples) -> batch``. They are classes (picklable into
loader worker processes) whose errors name the offending field and sample."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from runner import DataError


def _stack(values: Sequence[Any], where: str) -> Any:
    first = values[0]
    if isinstance(first, torch.Tensor):
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) > 1:
            raise DataError(
                f"collate {where}: tensors of different shapes {sorted(shapes)[:3]} cannot be stacked; "
                'use collate = { name = "pad" } for variable-length sequences'
            )
        return torch.stack(list(values))
    if isinstance(first, np.ndarray):
        return _stack([torch.from_numpy(np.asarray(v)) for v in values], where)
    if isinstance(first, bool):
        return torch.tensor(values, dtype=torch.bool)
    if isinstance(first, int):
        return torch.tensor(values, dtype=torch.long)
    if isinstance(first, float):
        return torch.tensor(values, dtype=torch.float32)
    if isinstance(first, (str, bytes)) or first is None:
        return list(values)
    if isinstance(first, Mapping):
        return {key: _stack([v[key] for v in values], f"{where}[{key!r}]") for key in first}
    if isinstance(first, (tuple, list)):
        if len({len(v) for v in values}) > 1:
            raise DataError(f"collate {where}: samples have different numbers of fields")
        columns = [_stack(list(column), f"{where}[{i}]") for i, column in enumerate(zip(*values, strict=True))]
        if isinstance(first, tuple) and hasattr(first, "_fields"):
            return type(first)(*columns)
        return type(first)(columns) if isinstance(first, tuple) else columns
    raise DataError(f"collate {where}: cannot batch values of type {type(first).__name__}")


class DefaultCollate:
    """Tensors stacked, numbers to tensors, recursing into dicts/tuples/lists (like torch's)."""

    def __call__(self, samples: Sequence[Any]) -> Any:
        if not samples:
            raise DataError("collate: empty batch")
        return _stack(samples, "batch")


def _as_tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


class PadCollate:
    """Pads sequences (first dimension) to the batch maximum.

    Tuple samples give ``(*fields, mask, lengths)`` with the mask and lengths of the first
    padded field; dict samples give the dict plus ``<key>_mask`` and ``<key>_lengths`` for
    every padded key. ``mask`` is true at real positions.
    """

    def __init__(
        self,
        fields: Sequence[str] = (),
        pad_value: float = 0,
        side: str = "right",
        mask: bool = True,
        lengths: bool = True,
    ) -> None:
        if side not in ("right", "left"):
            raise ValueError(f"pad side must be 'right' or 'left', found {side!r}")
        self.fields = [str(f) for f in fields]
        self.pad_value = pad_value
        self.side = side
        self.mask = mask
        self.lengths = lengths

    def pad(self, values: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tensors = [_as_tensor(v) for v in values]
        sizes = torch.tensor([len(t) if t.dim() else 1 for t in tensors], dtype=torch.long)
        longest = int(sizes.max()) if len(sizes) else 0
        trailing = {tuple(t.shape[1:]) for t in tensors}
        if len(trailing) > 1:
            raise DataError(f"pad: sequences differ beyond their first dimension: {sorted(trailing)[:3]}")
        out = torch.full((len(tensors), longest, *tensors[0].shape[1:]), self.pad_value, dtype=tensors[0].dtype)
        mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
        for row, (t, n) in enumerate(zip(tensors, sizes.tolist(), strict=True)):
            span = slice(0, n) if self.side == "right" else slice(longest - n, longest)
            out[row, span] = t.reshape(n, *t.shape[1:]) if t.dim() else t.reshape(1)
            mask[row, span] = True
        return out, mask, sizes

    def _variable(self, values: Sequence[Any]) -> bool:
        first = values[0]
        if isinstance(first, (str, bytes)) or not hasattr(first, "__len__"):
            return False
        return len({len(v) for v in values}) > 1

    def __call__(self, samples: Sequence[Any]) -> Any:
        if not samples:
            raise DataError("collate: empty batch")
        first = samples[0]
        if isinstance(first, Mapping):
            keys = list(first)
            chosen = self.fields or [k for k in keys if self._variable([s[k] for s in samples])]
            for name in chosen:
                if name not in first:
                    raise DataError(f"pad: samples have no key {name!r}; keys: {', '.join(map(str, keys))}")
            batch: dict[str, Any] = {}
            for key in keys:
                values = [s[key] for s in samples]
                if key in chosen:
                    batch[key], mask, sizes = self.pad(values)
                    if self.mask:
                        batch[f"{key}_mask"] = mask
                    if self.lengths:
                        batch[f"{key}_lengths"] = sizes
                else:
                    batch[key] = _stack(values, f"batch[{key!r}]")
            return batch
        if isinstance(first, (tuple, list)):
            width = len(first)
            columns = [[s[i] for s in samples] for i in range(width)]
            if self.fields:
                try:
                    chosen_at = [int(f) for f in self.fields]
                except ValueError:
                    raise DataError(
                        f"pad: tuple samples need field positions ('0', '1', ...), found {self.fields}"
                    ) from None
                if any(not 0 <= i < width for i in chosen_at):
                    raise DataError(f"pad: fields {self.fields} outside the {width} fields of each sample")
            else:
                chosen_at = [i for i, column in enumerate(columns) if self._variable(column)]
            out: list[Any] = []
            extra: list[torch.Tensor] = []
            for i, column in enumerate(columns):
                if i in chosen_at:
                    padded, mask, sizes = self.pad(column)
                    out.append(padded)
                    if not extra:
                        extra = [t for t, keep in ((mask, self.mask), (sizes, self.lengths)) if keep]
                else:
                    out.append(_stack(column, f"batch[{i}]"))
            return (*out, *extra)
        padded, mask, sizes = self.pad(samples)
        return (padded, *[t for t, keep in ((mask, self.mask), (sizes, self.lengths)) if keep])


class StackDict:
    """Dict samples to a dict of stacked tensors (only ``keys`` when given)."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self.keys = list(keys)

    def __call__(self, samples: Sequence[Any]) -> dict[str, Any]:
        if not samples:
            raise DataError("collate: empty batch")
        for index, sample in enumerate(samples):
            if not isinstance(sample, Mapping):
                raise DataError(f"stack_dict: sample {index} is a {type(sample).__name__}, expected a dict")
        keys = self.keys or list(samples[0])
        batch = {}
        for key in keys:
            for index, sample in enumerate(samples):
                if key not in sample:
                    raise DataError(f"stack_dict: sample {index} has no key {key!r}; keys: {', '.join(sample)}")
            values = [s[key] for s in samples]
            batch[key] = _stack(
                [v if isinstance(v, (torch.Tensor, str)) else torch.as_tensor(v) for v in values],
                f"batch[{key!r}]",
            )
        return batch
