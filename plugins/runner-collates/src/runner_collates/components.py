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
    """Pads variable-length sequences to the longest in the batch: named fields (inputs, targets,
    lengths, attention_mask) a bundled task reads."""

    fields: list[str] = param(
        [],
        doc="Fields to pad: dict keys or tuple positions ('0', '1') (default: inputs or input_ids, and every "
        "other variable-length field).",
    )
    pad_value: float = param(0.0, doc="Value written in padded positions.")
    side: Literal["right", "left"] = param("right", doc="Pad after (right) or before (left) each sequence.")
    mask: bool = param(True, doc="Add a bool mask (attention_mask), true at real (non-padded) positions.")
    lengths: bool = param(True, doc="Add the int64 lengths of the sequences (lengths).")
    output: Literal["fields", "tuple"] = param(
        "fields",
        doc="'fields': a dict of named fields (runner.Batch); 'tuple': the 0.1 layout, (*fields, mask, lengths) "
        "for tuple samples and <key>_mask, <key>_lengths for dict samples.",
    )

    def build(self) -> collates.PadCollate:
        from runner_collates import collates

        return collates.PadCollate(
            fields=self.fields,
            pad_value=self.pad_value,
            side=self.side,
            mask=self.mask,
            lengths=self.lengths,
            output=self.output,
        )


@component
class StackDict:
    """Collates dict samples into a dict of stacked tensors."""

    keys: list[str] = param([], doc="Keys to keep (default: every key of the first sample).")

    def build(self) -> collates.StackDict:
        from runner_collates import collates

        return collates.StackDict(keys=self.keys)
