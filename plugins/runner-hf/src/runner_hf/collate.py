"""The ``dynamic_padding`` collate: named-field samples padded to the longest in the batch.

Returns the [batch convention](docs/data.md#batches)'s Hugging Face names: ``input_ids``,
``attention_mask`` (1 at real tokens) and ``labels``. With ``causal_lm = true`` the labels
are the input ids with padding set to -100, which Hugging Face's losses ignore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from runner import DataError

IGNORE_INDEX = -100


class DynamicPadding:
    """``collate(samples) -> {"input_ids", "attention_mask", "labels", ...}`` (see the module docstring)."""

    def __init__(self, pad_token_id: int, max_length: int | None, pad_to_multiple_of: int, causal_lm: bool) -> None:
        self.pad_token_id = pad_token_id
        self.max_length = max_length
        self.multiple = pad_to_multiple_of
        self.causal_lm = causal_lm

    def __call__(self, samples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not samples or not all(isinstance(s, Mapping) and "input_ids" in s for s in samples):
            found = type(samples[0]).__name__ if samples else "no samples"
            raise DataError(
                f"dynamic_padding: expected dict samples with 'input_ids' (e.g. the tokenized dataset), found {found}"
            )
        ids = [torch.as_tensor(s["input_ids"], dtype=torch.long)[: self.max_length] for s in samples]
        width = max(1, max(len(t) for t in ids))
        width = -(-width // self.multiple) * self.multiple
        input_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, tokens in enumerate(ids):
            input_ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        batch = {"input_ids": input_ids, "attention_mask": mask}
        if self.causal_lm:
            batch["labels"] = input_ids.masked_fill(mask == 0, IGNORE_INDEX)
        elif "labels" in samples[0]:
            batch["labels"] = torch.stack([torch.as_tensor(s["labels"]) for s in samples])
        for key in samples[0]:
            if key not in ("input_ids", "labels", "attention_mask") and isinstance(samples[0][key], torch.Tensor):
                batch[key] = torch.stack([torch.as_tensor(s[key]) for s in samples])
        return batch
