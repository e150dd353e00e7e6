"""``time_limit``: stop training cleanly once a wall-clock budget is spent.

The budget counts from when the callback is built (the run's start, in every attempt: a
resumed run gets its own ``minutes``). When it is spent, at the end of an optimizer step,
training stops with ``run.request_stop``: the final validation and test still run, the
summary says ``stopped: time limit of N min reached``, and a checkpointer saves where the
run stopped (runner-checkpoint's ``save_last``; a recipe whose ``[checkpoint]`` sets
``save_last = false`` is refused, since the stopped run would not be saved). Continue
with ``runner run RECIPE --resume``. With several processes the ranks agree on the step
to stop at (one all-reduce of a flag per step), so every rank stops at the same step.
"""

from __future__ import annotations

import time
from typing import Any

from runner import BuildContext, RunContext, RunnerError


class TimeLimit:
    """Requests a stop at the first step end after ``minutes`` of wall-clock time."""

    def __init__(self, minutes: float, ctx: BuildContext | None = None) -> None:
        self.minutes = minutes
        self.started = time.monotonic()
        checkpoint = ctx.recipe.checkpoint if ctx is not None and ctx.recipe is not None else None
        if checkpoint is not None and checkpoint.params.get("save_last") is False:
            raise RunnerError(
                "[[callbacks]] time_limit: [checkpoint] save_last = false would not save the run it stops; "
                "set save_last = true (the default)"
            )

    def expired(self, run: RunContext) -> bool:
        due = time.monotonic() - self.started >= self.minutes * 60
        if run.backend.world_size > 1:  # clocks differ between processes: stop when any rank is due
            import torch

            flag = torch.tensor([float(due)], dtype=torch.float64, device=run.device)
            due = bool(run.backend.all_reduce_sum(flag).item() > 0)
        return due

    def on_end_train_step(self, run: RunContext) -> None:
        if not run.should_stop and self.expired(run):
            run.request_stop(f"time limit of {self.minutes:g} min reached")
            run.add_summary("time_limit", {"minutes": self.minutes, "stopped_step": run.global_step})

    def summary(self) -> dict[str, Any]:
        return {"minutes": self.minutes}
