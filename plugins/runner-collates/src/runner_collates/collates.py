"""Collate functions: ``collate(samples) -> batch``. They are classes (picklable into
loader worker processes) whose errors name the offending field and sample."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from runner import INPUT_KEYS, DataError


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
    if isinstance(first, np.generic) and not isinstance(first, (np.str_, np.bytes_)):  # numpy scalars keep their dtype
        return torch.from_numpy(np.asarray(values))
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


def _length(value: Any) -> int | None:
    """The sequence length of ``value`` (its first dimension), or None when it is not a sequence.

    0-d tensors and arrays define ``__len__`` but raise on it: they are scalars, like
    numbers and strings.
    """
    if isinstance(value, (str, bytes)):
        return None
    ndim = getattr(value, "ndim", None)
    if ndim is not None:
        return int(value.shape[0]) if ndim > 0 else None
    return len(value) if hasattr(value, "__len__") else None


#: Where named-field output puts the fields of positional samples.
_POSITIONAL_NAMES = ("inputs", "targets")


class PadCollate:
    """Pads sequences (first dimension) to the batch maximum.

    With ``output = "fields"`` (the default) the batch is a dict of named fields
    (:class:`runner.Batch`): ``(inputs, targets)`` samples give ``inputs`` (padded),
    ``targets`` (stacked), ``lengths`` and ``attention_mask``; dict samples keep their
    keys, and ``lengths``/``attention_mask`` describe ``inputs`` (or ``input_ids``). The
    sequence field is padded in every batch, even one whose sequences all have one
    length, so every batch has the same fields.

    ``output = "tuple"`` keeps the 0.1 layout: tuple samples give ``(*fields, mask,
    lengths)`` with the mask and lengths of the first padded field; dict samples give the
    dict plus ``<key>_mask`` and ``<key>_lengths`` for every padded key. The mask is true
    at real positions.
    """

    def __init__(
        self,
        fields: Sequence[str] = (),
        pad_value: float = 0.0,
        side: str = "right",
        mask: bool = True,
        lengths: bool = True,
        output: str = "fields",
    ) -> None:
        if side not in ("right", "left"):
            raise ValueError(f"pad side must be 'right' or 'left', found {side!r}")
        if output not in ("fields", "tuple"):
            raise ValueError(f"pad output must be 'fields' or 'tuple', found {output!r}")
        self.fields = [str(f) for f in fields]
        self.pad_value = pad_value
        self.side = side
        self.mask = mask
        self.lengths = lengths
        self.output = output

    def pad(
        self, values: Sequence[Any], pad_value: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(padded, mask, lengths)`` of ``values`` (``pad_value`` defaults to the collate's)."""
        tensors = [_as_tensor(v) for v in values]
        sizes = torch.tensor([len(t) if t.dim() else 1 for t in tensors], dtype=torch.long)
        longest = int(sizes.max()) if len(sizes) else 0
        trailing = {tuple(t.shape[1:]) for t in tensors}
        if len(trailing) > 1:
            raise DataError(f"pad: sequences differ beyond their first dimension: {sorted(trailing)[:3]}")
        fill = self.pad_value if pad_value is None else pad_value
        out = torch.full((len(tensors), longest, *tensors[0].shape[1:]), fill, dtype=tensors[0].dtype)
        mask = torch.zeros(len(tensors), longest, dtype=torch.bool)
        for row, (t, n) in enumerate(zip(tensors, sizes.tolist(), strict=True)):
            span = slice(0, n) if self.side == "right" else slice(longest - n, longest)
            out[row, span] = t.reshape(n, *t.shape[1:]) if t.dim() else t.reshape(1)
            mask[row, span] = True
        return out, mask, sizes

    @staticmethod
    def _variable(values: Sequence[Any]) -> bool:
        """True when every value is a sequence and their lengths differ."""
        found = {_length(v) for v in values}
        return None not in found and len(found) > 1

    def __call__(self, samples: Sequence[Any]) -> Any:
        if not samples:
            raise DataError("collate: empty batch")
        if self.output == "fields":
            return self._named(samples)
        first = samples[0]
        if isinstance(first, Mapping):
            return self._legacy_dict(samples)
        if isinstance(first, (tuple, list)):
            return self._legacy_tuple(samples)
        padded, mask, sizes = self.pad(samples)
        return (padded, *[t for t, keep in ((mask, self.mask), (sizes, self.lengths)) if keep])

    # -- named fields (the batch convention) ----------------------------------------

    def _as_fields(self, sample: Any, index: int) -> Mapping[str, Any]:
        if isinstance(sample, Mapping):
            return sample
        if isinstance(sample, (tuple, list)):
            if not 1 <= len(sample) <= len(_POSITIONAL_NAMES):
                raise DataError(
                    f"pad: sample {index} has {len(sample)} fields; named output takes (inputs, targets) "
                    'samples, (inputs,) samples or dicts; set output = "tuple" for positional output'
                )
            return dict(zip(_POSITIONAL_NAMES, sample, strict=False))  # (inputs,) has no targets
        return {"inputs": sample}

    def _chosen(self, keys: list[str], columns: dict[str, list[Any]], positional: bool) -> list[str]:
        """The keys to pad: ``fields`` (names, or positions of tuple samples), else the
        sequence field and every other variable-length field."""
        if self.fields:
            names = [
                _POSITIONAL_NAMES[int(f)] if positional and f.isdigit() and int(f) < len(keys) else f
                for f in self.fields
            ]
            for name in names:
                if name not in keys:
                    raise DataError(f"pad: samples have no field {name!r}; fields: {', '.join(map(str, keys))}")
            return names
        sequence = next((k for k in INPUT_KEYS if k in columns), None)
        return [
            key
            for key in keys
            if self._variable(columns[key]) or (key == sequence and _length(columns[key][0]) is not None)
        ]

    def _named(self, samples: Sequence[Any]) -> dict[str, Any]:
        rows = [self._as_fields(sample, i) for i, sample in enumerate(samples)]
        keys = list(rows[0])
        columns: dict[str, list[Any]] = {}
        for key in keys:
            column = []
            for index, row in enumerate(rows):
                if key not in row:
                    raise DataError(f"pad: sample {index} has no field {key!r}; fields: {', '.join(map(str, row))}")
                column.append(row[key])
            columns[key] = column
        chosen = self._chosen(keys, columns, positional=not isinstance(samples[0], Mapping))
        # lengths and attention_mask describe the sequence field, else the first padded one.
        described = next((k for k in INPUT_KEYS if k in chosen), chosen[0] if chosen else None)
        batch: dict[str, Any] = {}
        extra: dict[str, torch.Tensor] = {}
        for key in keys:
            if key not in chosen:
                batch[key] = _stack(columns[key], f"batch[{key!r}]")
                continue
            # A sample's own attention mask is padded as padding: 0 (false), whatever pad_value is.
            batch[key], mask, sizes = self.pad(columns[key], 0 if key == "attention_mask" else None)
            if key == described:
                extra = {"attention_mask": mask} if self.mask else {}
                if self.lengths:
                    extra["lengths"] = sizes
        for key, value in extra.items():
            batch.setdefault(key, value)  # fields the samples bring win
        return batch

    # -- the 0.1 layout (output = "tuple") --------------------------------------------

    def _legacy_dict(self, samples: Sequence[Any]) -> dict[str, Any]:
        first = samples[0]
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

    def _legacy_tuple(self, samples: Sequence[Any]) -> tuple[Any, ...]:
        width = len(samples[0])
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
