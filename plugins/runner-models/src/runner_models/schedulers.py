"""Learning-rate schedulers, stepped once per optimizer step.

Each factory returns a ``torch.optim.lr_scheduler.LRScheduler`` (so it checkpoints with
``state_dict``). Schedules are pure functions of the step, :func:`cosine_factor` and
:func:`linear_factor`, giving the multiple of each group's base learning rate that
optimizer step ``step`` (0-based) uses. ``min_lr`` is an absolute learning rate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, StepLR


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


def build_constant(optimizer: torch.optim.Optimizer) -> LRScheduler:
    """Keep the optimizer's learning rate."""
    return LambdaLR(optimizer, constant_factor)


def build_step(optimizer: torch.optim.Optimizer, *, step_size: int, gamma: float = 0.1) -> LRScheduler:
    """Multiply the learning rate by ``gamma`` every ``step_size`` optimizer steps."""
    if step_size < 1:
        raise ValueError(f"step_size must be at least 1, found {step_size}")
    return StepLR(optimizer, step_size=step_size, gamma=gamma)


def build_cosine(
    optimizer: torch.optim.Optimizer, *, min_lr: float = 0.0, warmup_steps: int = 0, total_steps: int | None = None
) -> LRScheduler:
    """Optional linear warmup, then cosine decay to ``min_lr`` over the rest of the run."""
    total = check_total_steps(total_steps)
    schedule = functools.partial(cosine_factor, warmup_steps=warmup_steps, total_steps=total)
    return per_group(optimizer, schedule, min_lr)


def build_linear_warmup(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    decay: Literal["none", "linear"] = "none",
    min_lr: float = 0.0,
    total_steps: int | None = None,
) -> LRScheduler:
    """Linear warmup over ``warmup_steps``, then constant or linear decay to ``min_lr``."""
    if decay not in ("none", "linear"):
        raise ValueError(f"decay must be 'none' or 'linear', found {decay!r}")
    total = check_total_steps(total_steps) if decay == "linear" else (total_steps or 1)
    schedule = functools.partial(linear_factor, warmup_steps=warmup_steps, total_steps=total, decay=decay == "linear")
    return per_group(optimizer, schedule, min_lr if decay == "linear" else 0.0)
