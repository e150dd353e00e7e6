"""The cnn model: output shapes, pooling, flat inputs and sizes inferred from the dataset meta."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from runner_models.cnn import CNN
from runner_models.components import models

DIGITS_META = {"in_features": 64, "num_classes": 10, "in_channels": 1, "image_size": [8, 8]}


def ctx(**meta: Any) -> Any:
    return SimpleNamespace(meta=meta)


def build(ctx: Any = None, **params: Any) -> CNN:
    """The ``cnn`` component's model, as a run builds it."""
    return models.CNN(**params).build(ctx=ctx)


def count(model: nn.Module, layer: type[nn.Module]) -> int:
    return sum(isinstance(m, layer) for m in model.modules())


def test_digits_sized_from_meta() -> None:
    model = build(ctx=ctx(**DIGITS_META))
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [32, 64]
    head = model.head[-1]
    assert isinstance(head, nn.Linear) and head.in_features == 64 * 2 * 2  # 8 -> 4 -> 2


def test_flat_inputs_are_reshaped_to_images() -> None:
    model = build(ctx=ctx(**DIGITS_META)).eval()
    images = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(images.reshape(3, 64)), model(images))


def test_rectangular_multichannel_images() -> None:
    model = build(in_channels=3, image_size=[12, 20], channels=[4, 4, 4], num_classes=5)
    assert model(torch.randn(2, 3, 12, 20)).shape == (2, 5)
    assert model.head[-1].in_features == 4 * 1 * 2  # 12x20 -> 6x10 -> 3x5 -> 1x2


def test_pooling_stops_at_one_pixel() -> None:
    model = build(in_channels=1, image_size=[2, 2], channels=[4, 4, 4], num_classes=2)
    assert count(model, nn.MaxPool2d) == 1
    assert model(torch.randn(2, 1, 2, 2)).shape == (2, 2)


def test_batch_norm_and_dropout_are_optional() -> None:
    plain = build(in_channels=1, image_size=[8, 8], channels=[4], num_classes=2, batch_norm=False)
    assert count(plain, nn.BatchNorm2d) == 0 and count(plain, nn.Dropout) == 0
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))
    full = build(in_channels=1, image_size=[8, 8], channels=[4, 4], num_classes=2, dropout=0.5)
    assert count(full, nn.BatchNorm2d) == 2 and count(full, nn.Dropout) == 1
    assert all(m.bias is None for m in full.modules() if isinstance(m, nn.Conv2d))


def test_larger_kernels_keep_spatial_size() -> None:
    model = build(in_channels=1, image_size=[8, 8], channels=[4], num_classes=2, kernel_size=5)
    assert model.features(torch.randn(1, 1, 8, 8)).shape == (1, 4, 4, 4)


@pytest.mark.parametrize("named", ["in_channels", "image_size", "num_classes"])
def test_missing_sizes_name_the_parameter(named: str) -> None:
    meta = {k: v for k, v in DIGITS_META.items() if k != named}
    with pytest.raises(ValueError, match=f"cnn: set {named}"):
        build(ctx=ctx(**meta))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="channels"):
        CNN(1, (8, 8), [], 10)
    with pytest.raises(ValueError, match="image_size"):
        build(in_channels=1, image_size=[8], num_classes=2)


@pytest.mark.slow  # takes seconds
def test_trains_on_a_batch() -> None:
    torch.manual_seed(0)
    model = build(in_channels=1, image_size=[8, 8], channels=[8], num_classes=2)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(2, (16,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
