"""``early_stopping``: stop training when a validation metric stops improving.

It reads the metric from the loader's validation record (``on_log``), after the task and
other callbacks added their whole-epoch metrics to it, so any recorded metric can be
watched (``val/main/f1_macro``). Its counters are checkpointed (``get_state``), so a
resumed run stops at the same step as an uninterrupted one; a run restored after it had
stopped stays stopped. With several processes every rank sees the same reduced record and
takes the same decision.
"""

from __future__ import annotations

import math
from typing import Any

from runner import BuildContext, RunContext, RunnerError


class EarlyStopping:
    """Counts validations without an improvement of ``monitor`` larger than ``min_delta``;
    at ``patience`` it asks the run to stop (``run.request_stop``), with the reason in the summary."""

    def __init__(
        self,
        monitor: str = "val/main/loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        ctx: BuildContext | None = None,
    ) -> None:
        _, key, name = monitor.split("/", 2)
        recipe = ctx.recipe if ctx is not None else None
        if recipe is not None and recipe.datamodule is None and key not in recipe.val:
            loaders = ", ".join(f"[data.val.{k}]" for k in recipe.val) or "none"
            raise RunnerError(
                f"[[callbacks]] early_stopping: monitor {monitor!r} names the validation loader {key!r}, "
                f"which the recipe does not have (validation loaders: {loaders})"
            )
        self.monitor, self.key, self.name = monitor, key, name
        self.mode = mode
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_step = -1
        self.wait = 0
        self.stopped_step = -1
        self.reason = ""

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_log(self, run: RunContext, record: dict[str, Any]) -> None:
        if record.get("stage") != "val" or record.get("key", "main") != self.key or self.stopped_step >= 0:
            return
        value = record.get(self.name)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            known = ", ".join(
                k for k, v in record.items() if k not in ("stage", "key", "epoch", "step") and v is not None
            )
            raise RunnerError(
                f"[[callbacks]] early_stopping: monitor {self.monitor!r} is not in the val/{self.key} record "
                f"(it has: {known}); name one of those, or add the metric to [task] metrics"
            )
        step = int(record.get("step", run.global_step))
        if self.improved(float(value)):
            self.best, self.best_step, self.wait = float(value), step, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            self.stopped_step = step
            best = "nan" if self.best is None else f"{self.best:.4g}"
            self.reason = (
                f"early stopping: {self.monitor} did not improve for {self.patience} validation"
                f"{'s' if self.patience != 1 else ''} (best {best} at step {self.best_step})"
            )
            run.request_stop(self.reason)
        run.add_summary("early_stopping", self.summary())

    def summary(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "stopped_step": self.stopped_step if self.stopped_step >= 0 else None,
        }

    def get_state(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_step": self.best_step,
            "wait": self.wait,
            "stopped_step": self.stopped_step,
            "reason": self.reason,
        }

    def update_state(self, run: RunContext, state: dict[str, Any]) -> None:
        self.best = None if state.get("best") is None else float(state["best"])
        self.best_step = int(state.get("best_step", -1))
        self.wait = int(state.get("wait", 0))
        self.stopped_step = int(state.get("stopped_step", -1))
        self.reason = str(state.get("reason", ""))
        if self.stopped_step >= 0:  # restored after it stopped the run: training stays over
            run.request_stop(self.reason)
        if self.best is not None:
            run.add_summary("early_stopping", self.summary())
