"""Recipe parameters of the ``default`` checkpointer (torch-free, read at validation)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from runner import at_least, param


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else f"must be greater than 0, found {value}"


@attrs.define
class CheckpointParams:
    """Crash-safe checkpoints (safetensors + JSON, sha256 manifest) with exact resume."""

    every_n_steps: int | None = param(None, doc="Save every N optimizer steps.", check=at_least(1))
    every_epoch: bool = param(True, doc="Save at the end of every epoch (after its validation).")
    every_minutes: float | None = param(
        None, doc="Save when this many minutes have passed since the last save.", check=_positive
    )
    save_last: bool = param(True, doc="Save when training ends, so a finished run can be resumed and extended.")
    keep_last: int | None = param(3, doc="Keep the N newest checkpoints (unset: keep all).", check=at_least(0))
    keep_best: int = param(0, doc="Also keep the M best checkpoints by `monitor`.", check=at_least(0))
    monitor: str | None = param(None, doc='Metric that ranks checkpoints for keep_best, e.g. "val/main/accuracy".')
    mode: Literal["max", "min"] = param("max", doc="Whether a larger or a smaller `monitor` is better.")
    on_signal: bool = param(
        True, doc="On SIGTERM/SIGINT: save where the run stops (the end of the current step; preemption)."
    )
