"""Learning-rate schedules, stepped once per optimizer step (the components are in
:mod:`runner_models.components.training`).

Each component builds a ``torch.optim.lr_scheduler.LRScheduler`` (so it checkpoints with
``state_dict``). Schedules are pure functions of the step, :func:`cosine_factor` and
:func:`linear_factor`, giving the multiple of each group's base learning rate that
optimizer step ``step`` (0-based) uses. ``min_lr`` is an absolute learning rate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


def constant_factor(step: int) -> float:
    """Always 1: keep the base learning rate."""
    return 1.0


def warmup(step: int, warmup_steps: int) -> float | None:
    """Linear warmup factor ``(step + 1) / warmup_steps`` during warmup, None after it."""
    return (step + 1) / warmup_steps if step < warmup_steps else None


def cosine_factor(step: int, *, warmup_steps: int, total_steps: int, floor: float) -> float:
    """Linear warmup, then half a cosine from 1 down to ``floor`` at ``total_steps``."""
    rising = warmup(step, warmup_steps)
    if rising is not None:
        return rising
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def linear_factor(step: int, *, warmup_steps: int, total_steps: int, floor: float, decay: bool) -> float:
    """Linear warmup, then 1 (no decay) or a straight line from 1 down to ``floor`` at ``total_steps``."""
    rising = warmup(step, warmup_steps)
    if rising is not None:
        return rising
    if not decay:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 1.0 - (1.0 - floor) * progress


def floors(optimizer: torch.optim.Optimizer, min_lr: float) -> list[float]:
    """``min_lr`` as a fraction of each parameter group's learning rate."""
    result = []
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        if min_lr > lr:
            raise ValueError(f"min_lr ({min_lr}) must not exceed the optimizer's lr ({lr})")
        result.append(min_lr / lr if lr > 0 else 0.0)
    return result


def per_group(optimizer: torch.optim.Optimizer, schedule: Callable[..., float], min_lr: float) -> LambdaLR:
    """A LambdaLR applying ``schedule(step, floor=...)`` with each group's own floor."""
    lambdas: list[Callable[[int], float]] = [
        functools.partial(schedule, floor=floor) for floor in floors(optimizer, min_lr)
    ]
    return LambdaLR(optimizer, lambdas)


def check_total_steps(total_steps: int | None) -> int:
    """The run's optimizer steps, which the engine passes; schedules over the run need it."""
    if total_steps is None or total_steps < 1:
        raise ValueError(f"this scheduler needs the run's total optimizer steps (total_steps), found {total_steps}")
    return total_steps
