"""The sweep's axes as Ray Tune search spaces, and the numbered trials drawn from them.

Each :class:`runner.Axis` maps onto one Tune domain: a choice onto ``tune.choice`` over
the values' indices (recipe values may be arrays or tables, which Tune would walk into),
``uniform``/``loguniform`` onto the same Tune distributions, and ``intuniform(low, high)``,
which includes ``high``, onto ``tune.randint(low, high + 1)`` (Tune's upper bound is
excluded). Trial ``n`` of a random search is drawn from a generator keyed by the sweep's
seed, ``n`` and the axis, so a restarted sweep proposes exactly the same trials and the
ledger can tell which of them already ran.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from types import ModuleType
from typing import Any

from runner import Axis, RunnerError

#: The result key a trial reports its metric under (Tune splits keys at "/", as in "main/loss").
OBJECTIVE = "objective"
#: The result key ASHA measures a trial's progress in: the validation record's optimizer step.
STEP = "step"
#: What a NaN or infinite value is reported as (the worst, yet a number: ASHA's percentiles
#: of an infinity are NaN, and a NaN compares as neither better nor worse).
WORST = 1e300


def import_tune() -> ModuleType:
    """``ray.tune``, imported without Ray's import-time deprecation notices, or a
    :class:`RunnerError` saying how to install it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ray import tune
    except ImportError as exc:
        raise RunnerError(
            f'[sweep] name = "ray" needs Ray Tune, which is not installed ({exc}); '
            "pip install 'runner-ray[ray]' (or pip install 'ray[tune]')"
        ) from None
    return tune


def search_space(axes: tuple[Axis, ...]) -> dict[str, Any]:
    """One Tune domain per axis, by key (see the module's docstring for the mapping)."""
    tune = import_tune()
    space: dict[str, Any] = {}
    for axis in axes:
        if axis.kind == "choice":
            space[axis.key] = tune.choice(list(range(len(axis.values))))
        elif axis.kind == "int":
            space[axis.key] = tune.randint(int(axis.low), int(axis.high) + 1)
        elif axis.kind == "loguniform":
            space[axis.key] = tune.loguniform(axis.low, axis.high)
        else:
            space[axis.key] = tune.uniform(axis.low, axis.high)
    return space


def to_values(axes: tuple[Axis, ...], sample: dict[str, Any]) -> dict[str, Any]:
    """A Tune sample as recipe values: choice indices become the values, numpy numbers Python ones."""
    values: dict[str, Any] = {}
    for axis in axes:
        drawn = sample[axis.key]
        if axis.kind == "choice":
            values[axis.key] = axis.values[int(drawn)]
        elif axis.kind == "int":
            values[axis.key] = int(drawn)
        else:
            values[axis.key] = float(drawn)
    return values


def _seed(*parts: object) -> int:
    """A stable 64-bit seed from ``parts`` (Python's ``hash`` of a string changes per process)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def random_trials(axes: tuple[Axis, ...], seed: int, trials: int) -> list[tuple[int, dict[str, Any]]]:
    """Trials ``0 .. trials-1``, each drawn from the search space with its own generator."""
    space = search_space(axes)
    planned = []
    for number in range(trials):
        sample = {key: domain.sample(random_state=_seed(seed, number, key)) for key, domain in space.items()}
        planned.append((number, to_values(axes, sample)))
    return planned


def grid_trials(axes: tuple[Axis, ...], trials: int | None) -> list[tuple[int, dict[str, Any]]]:
    """Every combination of the axes' values, the first axis varying slowest (``trials`` keeps the first N)."""
    continuous = [f"{axis.key} = {axis.describe()}" for axis in axes if not axis.finite]
    if continuous:
        raise RunnerError(
            f'[sweep] search = "grid" needs finite axes (an array, choice(...) or range(...)); found '
            f'{", ".join(continuous)}: use search = "random" for intervals'
        )
    combos = itertools.product(*(axis.values for axis in axes))
    points = (dict(zip((axis.key for axis in axes), combo, strict=True)) for combo in combos)
    return list(enumerate(itertools.islice(points, trials)))


def objective(value: float, maximize: bool) -> float:
    """The value a trial reports to Tune: ``value``, or the worst number when it is NaN or infinite."""
    if math.isfinite(value):
        return value
    return -WORST if maximize else WORST
