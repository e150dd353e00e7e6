"""The synthetic dataset: shapes, determinism, distinct splits of one learnable problem."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from runner_datasets.components import Synthetic
from runner_datasets.tensors import MetaTensorDataset


def build(**params: Any) -> MetaTensorDataset:
    """The ``synthetic`` component's dataset, as a run builds it."""
    return Synthetic(**params).build()


def test_classification_shapes_and_meta() -> None:
    dataset = build(split="train", num_samples=300, num_features=7, num_classes=5)
    x, y = dataset.tensors
    assert x.shape == (300, 7) and x.dtype == torch.float32
    assert y.shape == (300,) and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(5))
    assert dataset.meta == {"in_features": 7, "num_classes": 5, "task": "classification"}
    features, label = dataset[0]
    assert features.shape == (7,) and label.shape == ()


def test_regression_shapes_and_meta() -> None:
    dataset = build(split="val", task="regression", num_samples=50, num_features=3, num_targets=2)
    x, y = dataset.tensors
    assert x.shape == (50, 3) and y.shape == (50, 2)
    assert x.dtype == y.dtype == torch.float32
    assert dataset.meta == {"in_features": 3, "out_features": 2, "task": "regression"}


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_same_parameters_give_the_same_data_whatever_the_global_seed(task: str) -> None:
    torch.manual_seed(0)
    first = build(split="train", task=task, num_samples=64)  # type: ignore[arg-type]
    torch.manual_seed(123)
    second = build(split="train", task=task, num_samples=64)  # type: ignore[arg-type]
    assert all(torch.equal(a, b) for a, b in zip(first.tensors, second.tensors, strict=True))
    other = build(split="train", task=task, num_samples=64, data_seed=1)  # type: ignore[arg-type]
    assert not torch.equal(first.tensors[0], other.tensors[0])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_splits_hold_different_samples(task: str) -> None:
    splits = [build(split=s, task=task, num_samples=64).tensors[0] for s in ("train", "val", "test")]  # type: ignore[arg-type]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not torch.equal(splits[i], splits[j])


def test_classification_is_learnable_across_splits() -> None:
    """Class means estimated on train classify val well: both splits share the problem."""
    params = {"num_samples": 2000, "num_features": 10, "num_classes": 4, "noise": 1.0}
    x, y = build(split="train", **params).tensors  # type: ignore[arg-type]
    means = torch.stack([x[y == c].mean(0) for c in range(4)])
    vx, vy = build(split="val", **params).tensors  # type: ignore[arg-type]
    predicted = torch.cdist(vx, means).argmin(1)
    assert (predicted == vy).float().mean() > 0.9


def test_regression_is_the_same_linear_problem_across_splits() -> None:
    params = {"task": "regression", "num_samples": 500, "num_features": 6, "num_targets": 2, "noise": 0.0}
    x, y = build(split="train", **params).tensors  # type: ignore[arg-type]
    ones = torch.ones(len(x), 1)
    solution = torch.linalg.lstsq(torch.cat([x, ones], 1), y).solution
    vx, vy = build(split="test", **params).tensors  # type: ignore[arg-type]
    predicted = torch.cat([vx, torch.ones(len(vx), 1)], 1) @ solution
    assert torch.allclose(predicted, vy, atol=1e-4)


def test_noise_scales_regression_residuals() -> None:
    quiet = build(split="train", task="regression", noise=0.0, num_samples=400).tensors[1]
    noisy = build(split="train", task="regression", noise=2.0, num_samples=400).tensors[1]
    assert (noisy - quiet).std() == pytest.approx(2.0, rel=0.2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"task": "ranking"}, "task"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_samples": 0}, "num_samples"),
        ({"noise": -1.0}, "noise"),
        ({"split": "dev"}, "split"),
    ],
)
def test_bad_parameters_are_rejected(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**{"split": "train", **params})  # type: ignore[arg-type]
