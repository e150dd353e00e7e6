"""Recipe parameters of the datasets (torch-free, so recipes validate without torch)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from runner import at_least, param

Split = Literal["train", "val", "test"]
"""The split names every dataset accepts."""


def fraction(value: Any) -> str | None:
    """Constraint: ``0 <= value < 1``."""
    return None if 0 <= value < 1 else f"must be at least 0 and below 1, found {value}"


@attrs.define
class DigitsParams:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), no download."""

    split: Literal["train", "val", "test"] = param(doc="Which part of the stratified train/val/test split to load.")
    val_fraction: float = param(0.15, doc="Fraction of each class held out for validation.", check=fraction)
    test_fraction: float = param(0.15, doc="Fraction of each class held out for testing.", check=fraction)
    split_seed: int = param(0, doc="Seed of the split; the split never depends on the run seed.")
    flatten: bool = param(True, doc="Samples as 64 features (true) or 1x8x8 images for a CNN (false).")


@attrs.define
class SyntheticParams:
    """Deterministic synthetic classification (Gaussian class clusters) or linear regression data."""

    split: Literal["train", "val", "test"] = param(
        doc="Which split to generate; each split holds different samples of the same problem."
    )
    task: Literal["classification", "regression"] = param("classification", doc="Kind of targets to generate.")
    num_samples: int = param(1000, doc="Samples in this split.", check=at_least(1))
    num_features: int = param(20, doc="Features per sample.", check=at_least(1))
    num_classes: int = param(2, doc="Classes (classification only).", check=at_least(2))
    num_targets: int = param(1, doc="Regression targets per sample (regression only).", check=at_least(1))
    noise: float = param(
        0.5,
        doc="Standard deviation of Gaussian noise on the features (classification) or targets (regression).",
        check=at_least(0),
    )
    data_seed: int = param(0, doc="Seed of the problem and its samples; independent of the run seed.")
