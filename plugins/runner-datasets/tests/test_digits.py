"""The digits dataset: split sizes, stratification, scaling, shapes and determinism."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from runner_datasets.components import Digits
from runner_datasets.digits import load_arrays
from runner_datasets.tensors import MetaTensorDataset

TOTAL = 1797


def build(**params: Any) -> MetaTensorDataset:
    """The ``digits`` component's dataset, as a run builds it."""
    return Digits(**params).build()


def test_splits_partition_the_dataset() -> None:
    sizes = {split: len(build(split=split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 1259, "val": 269, "test": 269}  # documented in the README
    assert sum(sizes.values()) == TOTAL
    # Disjoint: no image of val or test appears in train (digits has a handful of duplicate images).
    train = {row.tobytes() for row in build(split="train").tensors[0].numpy()}
    for split in ("val", "test"):
        rows = build(split=split).tensors[0].numpy()
        overlap = sum(row.tobytes() in train for row in rows)
        assert overlap <= 3, f"{overlap} {split} images also in train"


def test_every_class_is_split_in_proportion() -> None:
    _, labels = load_arrays()
    totals = np.bincount(labels, minlength=10)
    val_counts = np.bincount(build(split="val").tensors[1].numpy(), minlength=10)
    assert np.all(np.abs(val_counts - 0.15 * totals) <= 1)


def test_features_are_scaled_float32_and_labels_int64() -> None:
    dataset = build(split="train")
    x, y = dataset.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (len(dataset), 64)
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert set(y.tolist()) == set(range(10))
    features, labels = dataset[5]
    assert features.shape == (64,) and labels.shape == ()


def test_meta_describes_sizes() -> None:
    assert build(split="val").meta == {
        "in_features": 64,
        "num_classes": 10,
        "in_channels": 1,
        "image_size": [8, 8],
        "task": "classification",
    }


def test_images_when_not_flattened() -> None:
    flat = build(split="test")
    images = build(split="test", flatten=False)
    assert images.tensors[0].shape == (len(flat), 1, 8, 8)
    assert torch.equal(images.tensors[0].reshape(len(flat), 64), flat.tensors[0])
    assert torch.equal(images.tensors[1], flat.tensors[1])


def test_split_ignores_the_global_seed_but_follows_split_seed() -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    first = build(split="val")
    torch.manual_seed(2)
    np.random.seed(2)
    second = build(split="val")
    assert torch.equal(first.tensors[1], second.tensors[1])
    assert torch.equal(first.tensors[0], second.tensors[0])
    other = build(split="val", split_seed=1)
    assert not torch.equal(first.tensors[0], other.tensors[0])


def test_fractions_set_split_sizes() -> None:
    assert len(build(split="test", test_fraction=0.0)) == 0
    assert len(build(split="val", val_fraction=0.5, test_fraction=0.1)) == pytest.approx(0.5 * TOTAL, abs=10)


def test_dataset_does_not_alias_the_cache() -> None:
    dataset = build(split="train")
    dataset.tensors[0].zero_()
    assert float(build(split="train").tensors[0].max()) == 1.0


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (0.9, 0.2), (-0.1, 0.1), (0.1, 1.0)])
def test_bad_fractions_are_rejected(val: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        build(split="train", val_fraction=val, test_fraction=test)


def test_unknown_split_is_rejected_listing_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown split 'trian'; expected one of: .*train.*val"):
        build(split="trian")


def test_split_names_parse_like_helios_dataset_split() -> None:
    assert torch.equal(build(split="validation").tensors[1], build(split="VAL").tensors[1])
