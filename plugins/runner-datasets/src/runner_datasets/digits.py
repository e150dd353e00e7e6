"""The ``digits`` dataset: scikit-learn's bundled 8x8 handwritten digits (no download)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from runner_datasets.components import Split, parse_split
from runner_datasets.splits import stratified_split
from runner_datasets.tensors import MetaTensorDataset

IMAGE_SIZE = (8, 8)
NUM_CLASSES = 10
MAX_PIXEL = 16.0


@functools.lru_cache(maxsize=1)
def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 images as float32 ``(N, 64)`` features in [0, 1] and int64 labels (cached)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    features = (np.asarray(bunch.data, dtype=np.float32) / MAX_PIXEL).astype(np.float32)
    labels = np.asarray(bunch.target, dtype=np.int64)
    return features, labels


def build(
    *, split: Split, val_fraction: float, test_fraction: float, split_seed: int, flatten: bool
) -> MetaTensorDataset:
    """The ``split`` part of digits as ``(features, label)`` samples (the ``digits`` component,
    :class:`runner_datasets.components.Digits`, declares the parameters).

    Features are pixel intensities scaled to [0, 1]: 64 values, or a ``1x8x8`` image
    when ``flatten`` is false. The stratified split depends only on the fractions and
    ``split_seed``, never on the run seed.
    """
    split = parse_split(split)  # ValueError listing the accepted spellings
    features, labels = load_arrays()
    index = stratified_split(labels, val_fraction, test_fraction, split_seed)[split]
    x = torch.from_numpy(features[index])
    if not flatten:
        x = x.reshape(len(index), 1, *IMAGE_SIZE)
    y = torch.from_numpy(labels[index])
    meta = {
        "in_features": IMAGE_SIZE[0] * IMAGE_SIZE[1],
        "num_classes": NUM_CLASSES,
        "in_channels": 1,
        "image_size": list(IMAGE_SIZE),
        "task": "classification",
    }
    return MetaTensorDataset(x, y, meta=meta)
