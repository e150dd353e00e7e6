"""An in-memory dataset of aligned tensors that also describes itself through ``meta``."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import TensorDataset


class MetaTensorDataset(TensorDataset):
    """A ``TensorDataset`` (``tensors``, ``(features, target)`` samples) plus a ``meta`` dict.

    ``meta`` tells models their sizes (``in_features``, ``num_classes``, ...); ``tensors``
    lets the engine gather whole batches at once instead of collating samples.
    """

    def __init__(self, *tensors: torch.Tensor, meta: dict[str, Any]) -> None:
        super().__init__(*tensors)
        self.meta: dict[str, Any] = dict(meta)

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
        return f"{type(self).__name__}({len(self)} samples: {shapes}; meta={self.meta})"
