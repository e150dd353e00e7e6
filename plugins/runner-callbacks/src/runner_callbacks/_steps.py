"""When a training step is a logging step, seen from ``on_end_backward``."""

from __future__ import annotations

from runner import RunContext


def logging_step(run: RunContext, global_step: int, every: int | None = None) -> bool:
    """Whether the optimizer step in progress (``global_step + 1``) writes a train record.

    Values given to ``run.log_metrics`` from ``on_end_backward`` of such a step land in that
    step's record: the engine writes it right after the optimizer step.
    """
    return (global_step + 1) % (every or run.recipe.run.log_every) == 0
