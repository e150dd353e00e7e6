"""``lr_monitor``: the learning rate of every parameter group in the train records.

The core's train record has ``lr``, the first group's rate after the scheduler stepped
(the next step's). This callback adds the rate each group used for the logged step:
``lr_pg0``, ``lr_pg1``... (``lr_opt1_pg0`` with several optimizers, ``lr_<name>`` for a
group with a ``name``), and with ``momentum = true`` the momentum (or Adam's beta1) as
``momentum_pg0``...
"""

from __future__ import annotations

from typing import Any

from runner import RunContext
from runner_callbacks._steps import logging_step


def group_label(optimizer_index: int, group_index: int, group: dict[str, Any], optimizers: int) -> str:
    name = group.get("name")
    if isinstance(name, str) and name:
        return name
    return f"pg{group_index}" if optimizers == 1 else f"opt{optimizer_index}_pg{group_index}"


class LRMonitor:
    """Adds ``lr_<group>`` (and ``momentum_<group>``) to every train record."""

    def __init__(self, momentum: bool = False) -> None:
        self.momentum = momentum

    def values(self, optimizers: list[Any]) -> dict[str, float]:
        found: dict[str, float] = {}
        for i, optimizer in enumerate(optimizers):
            for j, group in enumerate(optimizer.param_groups):
                label = group_label(i, j, group, len(optimizers))
                found[f"lr_{label}"] = float(group["lr"])
                if self.momentum:
                    value = group.get("momentum", (group.get("betas") or (None,))[0])
                    if value is not None:
                        found[f"momentum_{label}"] = float(value)
        return found

    def on_end_backward(self, run: RunContext, global_step: int) -> None:
        if logging_step(run, global_step):
            run.log_metrics(self.values(run.optimizers))
