"""stratified_split: a disjoint, covering, per-class proportional and seeded partition."""

from __future__ import annotations

import numpy as np
import pytest

from runner_datasets.splits import check_fractions, stratified_split


def labels() -> np.ndarray:
    return np.repeat(np.arange(4), [100, 40, 7, 53])


def test_partition_is_disjoint_and_covers_every_index() -> None:
    parts = stratified_split(labels(), 0.2, 0.1, seed=0)
    joined = np.concatenate(list(parts.values()))
    assert len(joined) == len(labels())
    assert np.array_equal(np.sort(joined), np.arange(len(labels())))
    for indices in parts.values():
        assert np.all(np.diff(indices) > 0)


def test_each_class_keeps_its_proportion() -> None:
    y = labels()
    parts = stratified_split(y, 0.2, 0.1, seed=0)
    for label, count in enumerate(np.bincount(y)):
        assert np.sum(y[parts["val"]] == label) == round(count * 0.2)
        assert np.sum(y[parts["test"]] == label) == round(count * 0.1)


def test_seed_decides_the_partition() -> None:
    a = stratified_split(labels(), 0.2, 0.1, seed=0)
    b = stratified_split(labels(), 0.2, 0.1, seed=0)
    c = stratified_split(labels(), 0.2, 0.1, seed=1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["val"], c["val"])


def test_zero_fractions_leave_everything_in_train() -> None:
    parts = stratified_split(labels(), 0.0, 0.0, seed=3)
    assert len(parts["train"]) == len(labels())
    assert len(parts["val"]) == len(parts["test"]) == 0
    assert parts["val"].dtype == np.int64


def test_fractions_must_leave_training_data() -> None:
    check_fractions(0.3, 0.6)
    with pytest.raises(ValueError, match="below 1"):
        check_fractions(0.5, 0.5)
