"""The optimizers: hyperparameters reach torch, steps move parameters, frozen ones are skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from runner_models.components import training

DECLARATIONS: dict[str, Any] = {"sgd": training.SGD, "adam": training.Adam, "adamw": training.AdamW}


def builder(name: str) -> Callable[..., torch.optim.Optimizer]:
    """``build(model, **params)``: the optimizer component ``name`` as a run builds it."""
    return lambda model, **params: DECLARATIONS[name](**params).build(model=model)


BUILDERS = {name: builder(name) for name in DECLARATIONS}
build_sgd, build_adamw = BUILDERS["sgd"], BUILDERS["adamw"]


def quadratic_model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def loss_of(model: nn.Linear) -> torch.Tensor:
    x = torch.eye(3)
    return (model(x) - torch.tensor([[1.0], [2.0], [3.0]])).pow(2).mean()


@pytest.mark.parametrize(
    ("name", "cls"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_steps_reduce_a_quadratic_loss(name: str, cls: type[torch.optim.Optimizer]) -> None:
    model = quadratic_model()
    optimizer = BUILDERS[name](model, lr=0.05)
    assert type(optimizer) is cls
    before = loss_of(model).item()
    for _ in range(20):
        optimizer.zero_grad()
        loss_of(model).backward()
        optimizer.step()
    assert loss_of(model).item() < 0.5 * before


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("sgd", {}, {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False}),
        ("sgd", {"lr": 0.5, "momentum": 0.9, "nesterov": True}, {"lr": 0.5, "momentum": 0.9, "nesterov": True}),
        ("adam", {}, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
        ("adamw", {}, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}),
        ("adamw", {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}, {"betas": (0.8, 0.9), "eps": 1e-6}),
    ],
)
def test_hyperparameters_reach_torch(name: str, params: dict[str, Any], expected: dict[str, Any]) -> None:
    group = BUILDERS[name](quadratic_model(), **params).param_groups[0]
    for key, value in {**params, **expected}.items():
        assert group[key] == value, key


def test_adamw_decay_is_decoupled_from_the_gradient() -> None:
    """With zero gradients AdamW still shrinks weights by lr * weight_decay; Adam's L2 term does not."""
    for name, shrinks in (("adamw", True), ("adam", False)):
        weight = nn.Parameter(torch.full((4,), 2.0))
        module = nn.Module()
        module.weight = weight
        optimizer = BUILDERS[name](module, lr=0.1, weight_decay=0.5)
        weight.grad = torch.zeros(4)
        optimizer.step()
        if shrinks:
            assert torch.allclose(weight.detach(), torch.full((4,), 2.0 * (1 - 0.1 * 0.5)))
        else:  # Adam folds decay into the gradient: a normalised step of about lr
            assert torch.allclose(weight.detach(), torch.full((4,), 2.0 - 0.1), atol=1e-4)


def test_frozen_parameters_are_left_out() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    model[0].requires_grad_(False)
    optimizer = build_adamw(model)
    assert {id(p) for p in optimizer.param_groups[0]["params"]} == {id(p) for p in model[1].parameters()}


def test_a_model_without_trainable_parameters_is_rejected() -> None:
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_sgd(nn.ReLU())


def test_nesterov_needs_momentum() -> None:
    with pytest.raises(ValueError, match="momentum"):
        build_sgd(quadratic_model(), nesterov=True)
