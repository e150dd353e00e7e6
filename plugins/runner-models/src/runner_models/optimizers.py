"""What the ``sgd``, ``adam`` and ``adamw`` optimizers share: a model's trainable parameters."""

from __future__ import annotations

from torch import nn


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters that require gradients; raises if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    return params
