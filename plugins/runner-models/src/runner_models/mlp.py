"""The ``mlp`` model: Linear + activation (+ dropout) layers and a linear output layer."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Sequential):
    """A multilayer perceptron; inputs with more than one feature dimension are flattened."""

    def __init__(
        self,
        in_features: int,
        hidden: list[int],
        out_features: int,
        activation: Literal["relu", "gelu", "tanh"] = "relu",
        dropout: float = 0.0,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, found {activation!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be at least 0 and below 1, found {dropout}")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, in_features)`` (or ``(N, C, H, W)``, flattened) to ``(N, out_features)``."""
        if x.dim() > 2:
            x = x.flatten(1)
        for layer in self:
            x = layer(x)
        return x
