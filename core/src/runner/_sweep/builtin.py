"""The core's sweepers: ``grid`` (every combination) and ``random`` (seeded draws)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from runner._contract.declaration import component
from runner._contract.errors import RunnerError
from runner._sweep.sweep import Sweep


def grid_points(sweep: Sweep) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the first axis varying slowest."""
    continuous = [f"{axis.key} = {axis.describe()}" for axis in sweep.axes if not axis.finite]
    if continuous:
        raise RunnerError(
            f"a grid sweep needs finite axes (an array, choice(...) or range(...)); found {', '.join(continuous)}: "
            'use [sweep] name = "random" (or optuna) for intervals'
        )
    combos = itertools.product(*(axis.values for axis in sweep.axes))
    points = [dict(zip((axis.key for axis in sweep.axes), combo, strict=True)) for combo in combos]
    return points[: sweep.trials] if sweep.trials is not None else points


def random_point(sweep: Sweep, number: int) -> dict[str, Any]:
    """Trial ``number``'s values: drawn from a generator keyed by the seed, the trial and the axis,
    so a restarted sweep proposes exactly the same trials."""
    return {axis.key: axis.sample(random.Random(f"{sweep.seed}:{number}:{axis.key}")) for axis in sweep.axes}


class GridSweeper:
    """Runs :func:`grid_points` through the ledger."""

    def run(self, sweep: Sweep) -> None:
        sweep.run_points(enumerate(grid_points(sweep)))


class RandomSweeper:
    """Runs ``trials`` seeded random draws through the ledger."""

    def run(self, sweep: Sweep) -> None:
        if sweep.trials is None:
            raise RunnerError("a random sweep needs [sweep] trials = N (the number of draws)")
        sweep.run_points((n, random_point(sweep, n)) for n in range(sweep.trials))


@component
class Grid:
    """Every combination of the axes' values, in order (``trials`` keeps the first N).

    Axes must be finite: arrays, ``choice(...)`` or ``range(...)``.
    """

    def build(self) -> GridSweeper:
        return GridSweeper()


@component
class Random:
    """``trials`` random draws from the axes, seeded by ``[sweep] seed``: a restarted sweep draws the same."""

    def build(self) -> RandomSweeper:
        return RandomSweeper()
