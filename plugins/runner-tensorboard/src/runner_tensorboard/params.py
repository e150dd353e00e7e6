"""Recipe parameters of the ``tensorboard`` logger (torch-free)."""

from __future__ import annotations

import attrs

from runner import at_least, param


@attrs.define
class TensorBoardParams:
    """TensorBoard event files: scalars per stage/loader/metric, the recipe's hyperparameters
    (HParams dashboard) and the resolved recipe as text."""

    log_dir: str = param(
        ".", doc="Directory for the event files, relative to the run directory (or absolute); '.': the run directory."
    )
    hparams: bool = param(True, doc="Write the flattened recipe as hyperparameters, with the final val/test metrics.")
    recipe_text: bool = param(True, doc="Write the resolved recipe as a text summary named 'recipe'.")
    flush_secs: float = param(10.0, doc="How often the event writer flushes to disk.", check=at_least(0.1))
