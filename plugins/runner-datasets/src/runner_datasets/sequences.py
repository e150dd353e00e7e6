"""The ``sequences`` dataset: generated variable-length token sequences with a majority label.

Token 0 is never generated (it is free for padding). Tokens ``1..num_classes`` are
*markers*, one per class, the rest fillers; a sequence's label is the class whose marker
occurs most often in it, and generation makes that maximum unique. Learning it needs
the whole sequence (counting), not its length or a fixed position. The samples depend on
``data_seed`` and the split only, never on the run seed.
"""

from __future__ import annotations

import torch

from runner_datasets.components import Split, parse_split
from runner_datasets.splits import SPLITS
from runner_datasets.synthetic import generator


class SequenceDataset(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(tokens, label)`` samples: int64 ``(length,)`` tokens and an int64 0-d label.

    ``lengths`` (one int per sample) lets ``bucket_by_length`` batch without reading
    samples; ``meta`` gives models ``vocab_size`` and ``num_classes``.
    """

    def __init__(self, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor, meta: dict[str, object]):
        self.tokens = tokens
        self.offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)]).tolist()
        self.lengths: list[int] = lengths.tolist()
        self.labels = labels
        self.meta = meta

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]], self.labels[index]


def majority(
    tokens: torch.Tensor, lengths: torch.Tensor, num_classes: int, samples: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens, labels)``: labels are each sequence's most frequent marker class.

    Where markers tie, one tied class (drawn from ``samples``) wins a position that held
    another token, which makes it the unique maximum.
    """
    tokens = tokens.clone()
    rows = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    starts = lengths.cumsum(0) - lengths
    counts = torch.zeros(len(lengths), num_classes, dtype=torch.long)
    is_marker = tokens <= num_classes
    counts.index_put_((rows[is_marker], tokens[is_marker] - 1), torch.ones(()).long(), accumulate=True)
    best = counts.max(1, keepdim=True).values
    tied = ((counts == best).sum(1) > 1).nonzero().flatten()
    labels = counts.argmax(1)
    draws = torch.rand(len(tied), 2, generator=samples, dtype=torch.float64).tolist()
    for row, (pick_class, pick_position) in zip(tied.tolist(), draws, strict=True):
        row_counts = counts[row].tolist()
        candidates = [c for c, n in enumerate(row_counts) if n == max(row_counts)]
        winner = candidates[int(pick_class * len(candidates))]
        start, length = int(starts[row]), int(lengths[row])
        sequence = tokens[start : start + length].tolist()
        others = [i for i, token in enumerate(sequence) if token != winner + 1]  # not empty: another class ties
        tokens[start + others[int(pick_position * len(others))]] = winner + 1
        labels[row] = winner
    return tokens, labels


def build(
    *,
    split: Split,
    num_samples: int = 1000,
    min_len: int = 4,
    max_len: int = 32,
    vocab_size: int = 16,
    num_classes: int = 2,
    data_seed: int = 0,
) -> SequenceDataset:
    """``num_samples`` sequences of lengths drawn uniformly from ``[min_len, max_len]``."""
    split = parse_split(split)  # ValueError listing the accepted spellings
    if num_samples < 1 or min_len < 1:
        raise ValueError(f"num_samples and min_len must be at least 1, found {num_samples}, {min_len}")
    if max_len < min_len:
        raise ValueError(f"max_len ({max_len}) must be at least min_len ({min_len})")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, found {num_classes}")
    if vocab_size < num_classes + 2:
        raise ValueError(
            f"vocab_size ({vocab_size}) must be at least num_classes + 2 ({num_classes + 2}): "
            "padding (0), one marker token per class and a filler token"
        )
    samples = generator(data_seed, 1 + SPLITS.index(split))
    lengths = torch.randint(min_len, max_len + 1, (num_samples,), generator=samples)
    tokens = torch.randint(1, vocab_size, (int(lengths.sum()),), generator=samples)
    tokens, labels = majority(tokens, lengths, num_classes, samples)
    meta: dict[str, object] = {
        "vocab_size": vocab_size,
        "num_classes": num_classes,
        "max_len": max_len,
        "task": "classification",
    }
    return SequenceDataset(tokens, lengths, labels, meta)
