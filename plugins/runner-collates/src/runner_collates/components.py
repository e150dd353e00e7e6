"""The collate functions, each declared once (torch-free: ``build`` imports :mod:`runner_collates.collates`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runner import component, param

if TYPE_CHECKING:
    from runner_collates import collates


@component
class Default:
    """Stacks tensors and numbers, recursing into dicts, tuples and lists (strings stay lists)."""

    def build(self) -> collates.DefaultCollate:
        from runner_collates import collates

        return collates.DefaultCollate()


@component
class Pad:
    """Pads variable-length sequences to the longest in the batch, with a mask and the lengths."""

    fields: list[str] = param(
        [], doc="Fields to pad: tuple positions ('0', '1') or dict keys (default: every variable-length tensor field)."
    )
    pad_value: float = param(0, doc="Value written in padded positions.")
    side: Literal["right", "left"] = param("right", doc="Pad after (right) or before (left) each sequence.")
    mask: bool = param(True, doc="Add a bool mask, true at real (non-padded) positions.")
    lengths: bool = param(True, doc="Add the int64 lengths of the sequences.")

    def build(self) -> collates.PadCollate:
        from runner_collates import collates

        return collates.PadCollate(
            fields=self.fields, pad_value=self.pad_value, side=self.side, mask=self.mask, lengths=self.lengths
        )


@component
class StackDict:
    """Collates dict samples into a dict of stacked tensors."""

    keys: list[str] = param([], doc="Keys to keep (default: every key of the first sample).")

    def build(self) -> collates.StackDict:
        from runner_collates import collates

        return collates.StackDict(keys=self.keys)
