"""The mlp model: layer structure, output shapes and sizes inferred from the dataset meta."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from runner_models.components import models
from runner_models.mlp import MLP


def ctx(**meta: Any) -> Any:
    return SimpleNamespace(meta=meta)


def build(ctx: Any = None, **params: Any) -> MLP:
    """The ``mlp`` component's model, as a run builds it."""
    return models.MLP(**params).build(ctx=ctx)


def linears(model: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]


def test_layers_follow_hidden_widths() -> None:
    model = build(in_features=5, hidden=[16, 8], num_classes=3)
    assert linears(model) == [(5, 16), (16, 8), (8, 3)]
    assert model(torch.randn(4, 5)).shape == (4, 3)


def test_no_hidden_layer_is_a_linear_model() -> None:
    model = build(in_features=5, hidden=[], out_features=2)
    assert linears(model) == [(5, 2)]


def test_default_hidden_is_one_layer_of_256() -> None:
    assert linears(build(in_features=64, num_classes=10)) == [(64, 256), (256, 10)]


def test_sizes_come_from_meta_when_unset() -> None:
    model = build(hidden=[7], ctx=ctx(in_features=64, num_classes=10))
    assert linears(model) == [(64, 7), (7, 10)]
    regression = build(hidden=[7], ctx=ctx(in_features=3, out_features=2))
    assert linears(regression) == [(3, 7), (7, 2)]


def test_parameters_win_over_meta() -> None:
    model = build(in_features=12, hidden=[7], num_classes=4, ctx=ctx(in_features=64, num_classes=10))
    assert linears(model) == [(12, 7), (7, 4)]


def test_image_meta_gives_flattened_input_size_and_images_are_flattened() -> None:
    model = build(hidden=[7], ctx=ctx(in_channels=3, image_size=[4, 5], num_classes=2))
    assert linears(model)[0] == (60, 7)
    assert model(torch.randn(6, 3, 4, 5)).shape == (6, 2)


@pytest.mark.parametrize(
    ("params", "meta", "named"),
    [
        ({"num_classes": 2}, {}, "in_features"),
        ({"in_features": 4}, {"in_features": 4}, "num_classes"),
        ({}, None, "in_features"),
    ],
)
def test_missing_sizes_name_the_parameter(params: dict[str, Any], meta: dict[str, Any] | None, named: str) -> None:
    with pytest.raises(ValueError, match=f"mlp: set {named}"):
        build(**params, ctx=None if meta is None else ctx(**meta))


def test_conflicting_output_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="not both"):
        build(in_features=4, num_classes=3, out_features=2)


@pytest.mark.parametrize(("name", "layer"), [("relu", nn.ReLU), ("gelu", nn.GELU), ("tanh", nn.Tanh)])
def test_activation(name: str, layer: type[nn.Module]) -> None:
    model = build(in_features=4, hidden=[8, 8], num_classes=2, activation=name)  # type: ignore[arg-type]
    assert sum(isinstance(m, layer) for m in model) == 2


def test_dropout_layers_only_when_enabled() -> None:
    assert not any(isinstance(m, nn.Dropout) for m in build(in_features=4, hidden=[8, 8], num_classes=2))
    model = build(in_features=4, hidden=[8, 8], num_classes=2, dropout=0.25)
    rates = [m.p for m in model if isinstance(m, nn.Dropout)]
    assert rates == [0.25, 0.25]


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="activation"):
        MLP(4, [8], 2, activation="swish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dropout"):
        MLP(4, [8], 2, dropout=1.0)


def test_gradients_reach_every_parameter() -> None:
    model = build(in_features=4, hidden=[8], num_classes=3)
    model(torch.randn(5, 4)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
