"""The ``synthetic`` dataset: deterministic classification or regression tensors.

The *problem* (class centroids, or regression weights) depends only on ``data_seed``;
the *samples* depend on ``data_seed`` and the split, so train, val and test hold
different samples of the same problem. Nothing depends on the run seed.
"""

from __future__ import annotations

from typing import Literal

import torch

from runner_datasets.components import Split, parse_split
from runner_datasets.splits import SPLITS
from runner_datasets.tensors import MetaTensorDataset

_SEED_STRIDE = 1_000_003


def generator(data_seed: int, stream: int) -> torch.Generator:
    """A CPU generator for ``stream`` (0: the problem, 1+: a split) of ``data_seed``."""
    gen = torch.Generator()
    gen.manual_seed((data_seed * _SEED_STRIDE + stream) % 2**63)
    return gen


def classification(
    num_samples: int,
    num_features: int,
    num_classes: int,
    noise: float,
    problem: torch.Generator,
    samples: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian clusters: features are a class centroid (unit normal) plus ``noise``-scaled normal noise."""
    centroids = torch.randn(num_classes, num_features, generator=problem)
    labels = torch.randint(num_classes, (num_samples,), generator=samples)
    features = centroids[labels] + noise * torch.randn(num_samples, num_features, generator=samples)
    return features, labels


def regression(
    num_samples: int,
    num_features: int,
    num_targets: int,
    noise: float,
    problem: torch.Generator,
    samples: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random linear map: targets ``x @ W + b`` plus ``noise``-scaled normal noise; ``x`` is unit normal."""
    weight = torch.randn(num_features, num_targets, generator=problem) / num_features**0.5
    bias = torch.randn(num_targets, generator=problem)
    features = torch.randn(num_samples, num_features, generator=samples)
    targets = features @ weight + bias + noise * torch.randn(num_samples, num_targets, generator=samples)
    return features, targets


def build(
    *,
    split: Split,
    task: Literal["classification", "regression"],
    num_samples: int,
    num_features: int,
    num_classes: int,
    num_targets: int,
    noise: float,
    data_seed: int,
) -> MetaTensorDataset:
    """``num_samples`` float32 feature vectors with int64 labels (classification) or float32
    ``(num_samples, num_targets)`` targets (regression). The ``synthetic`` component,
    :class:`runner_datasets.components.Synthetic`, declares the parameters."""
    split = parse_split(split)  # ValueError listing the accepted spellings
    if num_samples < 1 or num_features < 1:
        raise ValueError(f"num_samples and num_features must be at least 1, found {num_samples}, {num_features}")
    if noise < 0:
        raise ValueError(f"noise must be at least 0, found {noise}")
    problem = generator(data_seed, 0)
    samples = generator(data_seed, 1 + SPLITS.index(split))
    meta: dict[str, object] = {"in_features": num_features, "task": task}
    if task == "classification":
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, found {num_classes}")
        features, targets = classification(num_samples, num_features, num_classes, noise, problem, samples)
        meta["num_classes"] = num_classes
    elif task == "regression":
        if num_targets < 1:
            raise ValueError(f"num_targets must be at least 1, found {num_targets}")
        features, targets = regression(num_samples, num_features, num_targets, noise, problem, samples)
        meta["out_features"] = num_targets
    else:
        raise ValueError(f"task must be 'classification' or 'regression', found {task!r}")
    return MetaTensorDataset(features.float(), targets, meta=meta)
