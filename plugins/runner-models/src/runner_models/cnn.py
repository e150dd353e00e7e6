"""The ``cnn`` model: conv blocks (conv, batch norm, ReLU, 2x2 max-pool) and a linear head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class CNN(nn.Module):
    """A small convolutional classifier for ``(N, C, H, W)`` images.

    Each block halves the spatial size with a 2x2 max-pool while it is at least 2; the
    head flattens the last feature map into a linear layer. Flat ``(N, C*H*W)`` inputs
    are reshaped to images.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        channels: Sequence[int],
        num_classes: int,
        kernel_size: int = 3,
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one conv block")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be at least 0 and below 1, found {dropout}")
        self.input_shape = (in_channels, *image_size)
        height, width = image_size
        layers: list[nn.Module] = []
        previous = in_channels
        for out in channels:
            layers.append(nn.Conv2d(previous, out, kernel_size, padding="same", bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            previous = out
        self.features = nn.Sequential(*layers)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(previous * height * width, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` or ``(N, C*H*W)`` images to ``(N, num_classes)`` logits."""
        if x.dim() == 2:
            x = x.view(x.shape[0], *self.input_shape)
        logits: torch.Tensor = self.head(self.features(x))
        return logits
