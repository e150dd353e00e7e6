"""The sequences dataset: variable lengths, labels that follow the rule, determinism, bucketing hooks."""

from __future__ import annotations

import pytest
import torch

from runner_datasets.sequences import build


def marker_counts(tokens: torch.Tensor, num_classes: int) -> list[int]:
    return torch.bincount(tokens, minlength=num_classes + 1)[1 : num_classes + 1].tolist()


def test_samples_are_token_sequences_with_0d_labels_and_meta() -> None:
    dataset = build(split="train", num_samples=300, min_len=3, max_len=9, vocab_size=10, num_classes=3)
    assert len(dataset) == 300 and dataset.meta == {
        "vocab_size": 10,
        "num_classes": 3,
        "max_len": 9,
        "task": "classification",
    }
    tokens, label = dataset[5]
    assert tokens.dtype == label.dtype == torch.int64 and tokens.dim() == 1 and label.shape == ()
    assert dataset.lengths == [len(dataset[i][0]) for i in range(300)]  # what bucket_by_length reads
    assert {min(dataset.lengths), max(dataset.lengths)} == {3, 9}
    assert all(int(t.min()) >= 1 and int(t.max()) < 10 for t, _ in (dataset[i] for i in range(300)))  # 0 is padding
    assert sorted(set(dataset.labels.tolist())) == [0, 1, 2]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_the_label_is_the_unique_most_frequent_marker(num_classes: int) -> None:
    dataset = build(split="val", num_samples=500, max_len=12, vocab_size=num_classes + 3, num_classes=num_classes)
    for index in range(len(dataset)):
        tokens, label = dataset[index]
        counts = marker_counts(tokens, num_classes)
        assert counts[int(label)] == max(counts) and counts.count(max(counts)) == 1, (tokens, label)
    shares = torch.bincount(dataset.labels, minlength=num_classes) / len(dataset)
    assert float(shares.min()) > 0.5 / num_classes  # no class starved


def test_deterministic_per_seed_and_split_whatever_the_global_seed() -> None:
    torch.manual_seed(0)
    first = build(split="train", num_samples=64)
    torch.manual_seed(99)
    again = build(split="train", num_samples=64)
    assert torch.equal(first.tokens, again.tokens) and torch.equal(first.labels, again.labels)
    assert not torch.equal(build(split="test", num_samples=64).tokens[:100], first.tokens[:100])
    assert not torch.equal(build(split="train", num_samples=64, data_seed=1).tokens[:100], first.tokens[:100])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"min_len": 0}, "min_len"),
        ({"min_len": 8, "max_len": 4}, r"max_len \(4\) must be at least min_len \(8\)"),
        ({"num_classes": 3, "vocab_size": 4}, r"vocab_size \(4\) must be at least num_classes \+ 2 \(5\)"),
        ({"num_classes": 1}, "num_classes"),
        ({"split": "dev"}, "split"),
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**{"split": "train", **params})  # type: ignore[arg-type]
