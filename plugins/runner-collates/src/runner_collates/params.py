"""Recipe parameters of the collate functions (torch-free)."""

from __future__ import annotations

from typing import Literal

import attrs

from runner import param


@attrs.define
class DefaultParams:
    """Stacks tensors and numbers, recursing into dicts, tuples and lists (strings stay lists)."""


@attrs.define
class PadParams:
    """Pads variable-length sequences to the longest in the batch, with a mask and the lengths."""

    fields: list[str] = param(
        [], doc="Fields to pad: tuple positions ('0', '1') or dict keys (default: every variable-length tensor field)."
    )
    pad_value: float = param(0, doc="Value written in padded positions.")
    side: Literal["right", "left"] = param("right", doc="Pad after (right) or before (left) each sequence.")
    mask: bool = param(True, doc="Add a bool mask, true at real (non-padded) positions.")
    lengths: bool = param(True, doc="Add the int64 lengths of the sequences.")


@attrs.define
class StackDictParams:
    """Collates dict samples into a dict of stacked tensors."""

    keys: list[str] = param([], doc="Keys to keep (default: every key of the first sample).")
