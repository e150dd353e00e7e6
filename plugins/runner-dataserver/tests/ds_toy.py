"""The datasets of the runner-dataserver tests; models, tasks and optimizers come from
runner-models (``mlp``, ``classification``, ``sgd``), so nothing here copies another plugin.

Like a real plugin, it imports no torch at module level.
"""

from __future__ import annotations

from typing import Any, Literal

from runner import at_least, component, hookimpl, param


@component
class Toy:
    """Points in ``features`` dimensions labelled by the sign of the first coordinate, in memory
    (the loader's tensor fast path)."""

    split: Literal["train", "val", "test"] = param("train", doc="Which fixed sample to draw.")
    n: int = param(64, doc="Number of samples.", check=at_least(1))
    features: int = param(4, doc="Input dimensions.", check=at_least(1))

    def build(self) -> Any:
        import torch

        generator = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[self.split])
        x = torch.randn(self.n, self.features, generator=generator)
        dataset = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
        dataset.meta = {"in_features": self.features, "num_classes": 2}  # type: ignore[attr-defined]
        return dataset


class Numbers:
    """Sample i is (tensor([i, i*i]) float, i % 3); crashes its server once at ``crash_at``
    (the first time only: ``marker`` records that it happened) when set."""

    def __init__(
        self, n: int = 50, crash_at: int = -1, marker: str = "", fail_at: int = -1, delay: float = 0.0
    ) -> None:
        import time

        time.sleep(delay)
        self.n, self.crash_at, self.marker, self.fail_at = n, crash_at, marker, fail_at
        self.meta = {"in_features": 2, "num_classes": 3}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[Any, int]:
        import os

        import torch

        if index == self.crash_at and self.marker and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        if index == self.fail_at:
            raise ValueError(f"sample {index} is broken")
        return torch.tensor([float(index), float(index * index)]), index % 3


@hookimpl
def register_datasets(register: Any) -> None:
    register("dst_toy", Toy)
    register("dst_numbers", Numbers)
