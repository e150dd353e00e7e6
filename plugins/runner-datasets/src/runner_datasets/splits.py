"""Stratified train/val/test index splits that depend only on the labels and a seed."""

from __future__ import annotations

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise ``ValueError`` unless both fractions are in [0, 1) and leave room for training."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be at least 0 and below 1, found {value}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data, "
            f"found {val_fraction} + {test_fraction}"
        )


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of each split (sorted), taking the same fractions of every class.

    Each class is shuffled with a generator seeded by ``seed``; its first
    ``round(n * test_fraction)`` samples go to test, the next ``round(n * val_fraction)``
    to val, the rest to train. The three splits are disjoint and cover every index.
    """
    check_fractions(val_fraction, test_fraction)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(len(members) * test_fraction)
        n_val = round(len(members) * val_fraction)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test : n_test + n_val])
        parts["train"].append(members[n_test + n_val :])
    return {name: np.sort(np.concatenate(chunks)).astype(np.int64) for name, chunks in parts.items()}
