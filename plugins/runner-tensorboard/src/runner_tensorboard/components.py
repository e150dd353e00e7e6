"""The ``tensorboard`` logger, declared once (torch-free: ``build`` imports the logger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner import at_least, component, param

if TYPE_CHECKING:
    from pathlib import Path

    from runner_tensorboard.logger import TensorBoardLogger


@component
class TensorBoard:
    """TensorBoard event files: scalars per stage/loader/metric, the recipe's hyperparameters
    (HParams dashboard) and the resolved recipe as text."""

    log_dir: str = param(
        ".", doc="Directory for the event files, relative to the run directory (or absolute); '.': the run directory."
    )
    hparams: bool = param(True, doc="Write the flattened recipe as hyperparameters, with the final val/test metrics.")
    recipe_text: bool = param(True, doc="Write the resolved recipe as a text summary named 'recipe'.")
    flush_secs: float = param(10.0, doc="How often the event writer flushes to disk.", check=at_least(0.1))

    def build(self, run_dir: Path, ctx: Any = None) -> TensorBoardLogger:
        from runner_tensorboard.logger import TensorBoardLogger

        return TensorBoardLogger(
            run_dir,
            ctx,
            log_dir=self.log_dir,
            hparams=self.hparams,
            recipe_text=self.recipe_text,
            flush_secs=self.flush_secs,
        )
