"""The ``sgd``, ``adam`` and ``adamw`` optimizers over a model's trainable parameters."""

from __future__ import annotations

import torch
from torch import nn


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that require gradients; raises if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    return params


def build_sgd(
    model: nn.Module, *, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False
) -> torch.optim.SGD:
    """``torch.optim.SGD`` over the model's trainable parameters."""
    if nesterov and momentum <= 0:
        raise ValueError(f"nesterov = true needs momentum > 0, found momentum = {momentum}")
    return torch.optim.SGD(trainable(model), lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)


def build_adam(
    model: nn.Module,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Adam:
    """``torch.optim.Adam`` over the model's trainable parameters."""
    return torch.optim.Adam(trainable(model), lr=lr, betas=(betas[0], betas[1]), eps=eps, weight_decay=weight_decay)


def build_adamw(
    model: nn.Module,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.01,
) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` (decoupled weight decay) over the model's trainable parameters."""
    return torch.optim.AdamW(trainable(model), lr=lr, betas=(betas[0], betas[1]), eps=eps, weight_decay=weight_decay)
