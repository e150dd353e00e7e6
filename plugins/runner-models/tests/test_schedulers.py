"""The schedulers' learning-rate curves, stepped once per optimizer step, and their checkpoint state."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import LRScheduler

from runner_models.components import training
from runner_models.schedulers import cosine_factor


def build_constant(optimizer: torch.optim.Optimizer) -> LRScheduler:
    return training.Constant().build(optimizer)


def build_step(optimizer: torch.optim.Optimizer, **params: Any) -> LRScheduler:
    return training.Step(**params).build(optimizer)


def build_cosine(optimizer: torch.optim.Optimizer, total_steps: int | None = None, **params: Any) -> LRScheduler:
    return training.Cosine(**params).build(optimizer, total_steps=total_steps)


def build_linear_warmup(optimizer: torch.optim.Optimizer, total_steps: int | None = None, **params: Any) -> LRScheduler:
    return training.LinearWarmup(**params).build(optimizer, total_steps=total_steps)


def optimizer(*lrs: float) -> torch.optim.SGD:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0])


def curve(make: Callable[[torch.optim.Optimizer], LRScheduler], steps: int, *lrs: float) -> list[list[float]]:
    """The learning rate of every group at each of ``steps`` optimizer steps, plus after the last."""
    opt = optimizer(*(lrs or (1.0,)))
    scheduler = make(opt)
    assert isinstance(scheduler, LRScheduler)
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        scheduler.step()
    seen.append([g["lr"] for g in opt.param_groups])
    return seen


def first_group(values: list[list[float]]) -> list[float]:
    return [v[0] for v in values]


def test_constant() -> None:
    assert first_group(curve(build_constant, 5, 0.3)) == [0.3] * 6


def test_step_decays_every_step_size_optimizer_steps() -> None:
    lrs = first_group(curve(lambda o: build_step(o, step_size=3, gamma=0.5), 7))
    assert lrs == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_cosine_decays_from_lr_to_min_lr_over_the_run() -> None:
    total = 10
    lrs = first_group(curve(lambda o: build_cosine(o, min_lr=0.1, total_steps=total), total))
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(0.55)  # halfway: the mean of lr and min_lr
    assert lrs[total] == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(lrs))
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total + 1)]
    assert lrs == pytest.approx(expected)


def test_cosine_warmup_rises_linearly_then_decays() -> None:
    lrs = first_group(curve(lambda o: build_cosine(o, warmup_steps=4, total_steps=12), 12, 2.0))
    # Warmup reaches lr at its last step; the cosine then starts from lr over the 8 remaining steps.
    assert lrs[:6] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0 * 0.5 * (1 + math.cos(math.pi / 8))])
    assert lrs[12] == pytest.approx(0.0)
    assert max(lrs) == pytest.approx(2.0)


def test_cosine_min_lr_is_absolute_in_every_group() -> None:
    final = curve(lambda o: build_cosine(o, min_lr=0.05, total_steps=4), 4, 1.0, 0.1)[-1]
    assert final == pytest.approx([0.05, 0.05])


def test_cosine_stays_at_min_lr_past_the_end() -> None:
    assert cosine_factor(50, warmup_steps=0, total_steps=10, floor=0.2) == pytest.approx(0.2)


def test_linear_warmup_then_constant() -> None:
    lrs = first_group(curve(lambda o: build_linear_warmup(o, warmup_steps=4), 8))
    assert lrs == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1])


def test_linear_warmup_then_linear_decay_to_min_lr() -> None:
    lrs = first_group(
        curve(lambda o: build_linear_warmup(o, warmup_steps=2, decay="linear", min_lr=0.2, total_steps=6), 6)
    )
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])


def test_no_warmup_starts_at_full_lr() -> None:
    assert first_group(curve(lambda o: build_linear_warmup(o, warmup_steps=0), 2)) == pytest.approx([1, 1, 1])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda o: build_cosine(o), "total_steps"),
        (lambda o: build_linear_warmup(o, warmup_steps=2, decay="linear"), "total_steps"),
        (lambda o: build_cosine(o, min_lr=2.0, total_steps=5), "min_lr"),
        (lambda o: build_step(o, step_size=0), "step_size"),
    ],
)
def test_bad_arguments_are_rejected(make: Callable[[torch.optim.Optimizer], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(optimizer(1.0))


@pytest.mark.parametrize(
    "make",
    [
        build_constant,
        lambda o: build_step(o, step_size=2),
        lambda o: build_cosine(o, warmup_steps=2, total_steps=10),
        lambda o: build_linear_warmup(o, warmup_steps=2, decay="linear", total_steps=10),
    ],
)
def test_state_dict_resumes_the_same_curve(make: Callable[[torch.optim.Optimizer], LRScheduler]) -> None:
    opt = optimizer(1.0)
    scheduler = make(opt)
    for _ in range(4):
        opt.step()
        scheduler.step()
    saved_opt, saved_scheduler = opt.state_dict(), scheduler.state_dict()
    expected = []
    for _ in range(4):
        opt.step()
        scheduler.step()
        expected.append(opt.param_groups[0]["lr"])

    resumed_opt = optimizer(1.0)
    resumed = make(resumed_opt)
    resumed_opt.load_state_dict(saved_opt)
    resumed.load_state_dict(saved_scheduler)
    seen = []
    for _ in range(4):
        resumed_opt.step()
        resumed.step()
        seen.append(resumed_opt.param_groups[0]["lr"])
    assert seen == pytest.approx(expected)
