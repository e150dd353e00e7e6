"""The ``default`` checkpointer, declared once (torch-free, read at validation).

The declaration is also the checkpointer's configuration: ``build`` hands it, validated,
to :class:`runner_checkpoint.checkpointer.DefaultCheckpointer`, which reads it as ``params``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import at_least, check, component, param

if TYPE_CHECKING:
    from pathlib import Path

    from runner_checkpoint.checkpointer import DefaultCheckpointer


def _positive(value: Any) -> str | None:
    return None if value is None or value > 0 else f"must be greater than 0, found {value}"


@component
class CheckpointParams:
    """Crash-safe checkpoints (safetensors + JSON, sha256 manifest) with exact resume.

    A sharded state (the fsdp backend) is written by every process, each its shards, with
    torch.distributed.checkpoint; ``async = true`` writes in the background.
    """

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
    async_: bool = param(
        False,
        doc="Copy the state to host memory at the save point and write it in a background thread: the step "
        "waits only for the copy. The next save, a signal and the end of the run wait for the write.",
    )

    @check("keep_best", "monitor")
    def _ranked_by_a_metric(self) -> str | None:
        if self.keep_best and not self.monitor:
            return 'keep_best needs monitor (e.g. monitor = "val/main/accuracy")'
        return None

    def build(self, run_dir: Path) -> DefaultCheckpointer:
        from pathlib import Path

        from runner_checkpoint.checkpointer import DefaultCheckpointer

        return DefaultCheckpointer(Path(run_dir), self)
