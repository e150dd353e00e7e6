"""``throughput``: samples per second, step time and the fraction of time spent waiting for data.

Measured over windows of ``window`` optimizer steps (default: ``log_every``, one window
per train record) from the wall clock and the core's ``run.data_wait`` (the seconds the
training loop spent waiting for the train loader to hand it a batch):

- ``samples_per_sec``: training samples of all processes per second (this process's
  count times the number of processes: ranks get equal shares);
- ``step_time``: seconds per optimizer step;
- ``data_wait``: the fraction of the window spent waiting for batches (near 1: the loader
  is the bottleneck; add ``num_workers`` or cache the data).

They are wall-clock measurements, different in every run: a recipe compared with
``runner verify-resume`` should not list this callback.
"""

from __future__ import annotations

import time

from runner import RunContext
from runner_callbacks._steps import logging_step


class Throughput:
    """Adds ``samples_per_sec``, ``step_time`` and ``data_wait`` to the train records."""

    def __init__(self, window: int | None = None) -> None:
        self.window = window
        self._mark: tuple[float, int, float, int] | None = None

    def _now(self, run: RunContext) -> tuple[float, int, float, int]:
        return (time.perf_counter(), run.samples_seen, run.data_wait, run.global_step)

    def on_begin_train(self, run: RunContext) -> None:
        self._mark = self._now(run)

    def on_end_backward(self, run: RunContext, global_step: int) -> None:
        if self._mark is None or not logging_step(run, global_step, self.window):
            return
        now = self._now(run)
        seconds = now[0] - self._mark[0]
        steps = global_step + 1 - self._mark[3]
        if seconds <= 0 or steps <= 0:
            return
        run.log_metrics(
            {
                "samples_per_sec": (now[1] - self._mark[1]) * run.backend.world_size / seconds,
                "step_time": seconds / steps,
                "data_wait": min(1.0, (now[2] - self._mark[2]) / seconds),
            }
        )
        self._mark = (now[0], now[1], now[2], global_step + 1)
