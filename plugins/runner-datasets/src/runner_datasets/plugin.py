"""Entry module of the ``runner-datasets`` plugin: registers the datasets by name.

Imports only the torch-free parameter classes; factories are lazy references.
"""

from __future__ import annotations

from runner import hookimpl
from runner.registry import RegisterComponent
from runner_datasets.params import DigitsParams, SyntheticParams


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register ``digits`` and ``synthetic``."""
    register(
        "digits",
        "runner_datasets.digits:build",
        params=DigitsParams,
        doc="scikit-learn's 8x8 handwritten digits (bundled, no download), stratified train/val/test split.",
    )
    register(
        "synthetic",
        "runner_datasets.synthetic:build",
        params=SyntheticParams,
        doc="Deterministic synthetic classification or regression tensors of any size.",
    )
