"""The ``[sweep]`` table and its axes: what ``runner sweep`` varies (pure data, no torch).

An axis is a recipe key path and the values it takes::

    [sweep]
    name = "random"                      # the sweeper: grid, random, or a plugin's (optuna, ray)
    trials = 6
    [sweep.axes]
    "optimizer.lr" = "loguniform(1e-4, 1e-1)"
    "model.hidden" = [[64], [128, 128]]  # an array: a choice between its items

Expressions: ``choice(a, b, ...)`` (values are TOML, bare words strings), ``range(start,
stop[, step])`` (integers, stop excluded), ``uniform(low, high)``, ``loguniform(low,
high)`` and ``intuniform(low, high)`` (both ends included). Nothing is evaluated: an
expression is parsed, never run.
"""

from __future__ import annotations

import math
import random
import re
import sys
from collections.abc import Iterator
from typing import Any, Literal

import attrs

from runner._contract.params import at_least, between, param

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

EXPRESSION = re.compile(r"^\s*(choice|range|uniform|loguniform|intuniform)\s*\((.*)\)\s*$", re.S)
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_./:+ -]*")
#: The most points a grid may have (a typo such as range(0, 10**9) is an error, not a hang).
MAX_GRID = 100_000


@attrs.frozen
class Axis:
    """One swept key: a finite ``choice`` (``values``) or a ``uniform``/``loguniform``/``int`` interval."""

    key: str
    kind: Literal["choice", "uniform", "loguniform", "int"]
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def finite(self) -> bool:
        return self.kind == "choice"

    def sample(self, rng: random.Random) -> Any:
        """One value, drawn with ``rng``."""
        if self.kind == "choice":
            return self.values[rng.randrange(len(self.values))]
        if self.kind == "int":
            return rng.randint(int(self.low), int(self.high))
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice of {len(self.values)}"
        return f"{self.kind}({self.low:g}, {self.high:g})"


def _value(text: str) -> Any:
    text = text.strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        if _BARE.fullmatch(text):
            return text
        raise ValueError(f"cannot read {text!r} (a TOML value; quote strings)") from None


def split_arguments(text: str) -> list[str]:
    """Split ``a, [1, 2], "x,y"`` at its top-level commas."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    for index, char in enumerate(text):
        if quote:
            if char == quote and text[index - 1] != "\\":
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [p for p in (part.strip() for part in parts) if p] if text.strip() else []


def parse_axis(key: str, spec: Any) -> Axis:
    """The axis ``spec`` describes (an array, or an expression string); ``ValueError`` says why not."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError("an empty array has nothing to choose from")
        return Axis(key, "choice", tuple(spec))
    if not isinstance(spec, str):
        raise ValueError("expected an array of values or an expression such as choice(1, 2) or uniform(0, 1)")
    match = EXPRESSION.match(spec)
    if match is None:
        raise ValueError(
            f"expected choice(...), range(...), uniform(...), loguniform(...) or intuniform(...), found {spec[:60]!r}"
        )
    kind, args = match.group(1), [_value(a) for a in split_arguments(match.group(2))]
    if kind == "choice":
        if not args:
            raise ValueError("choice() needs at least one value")
        return Axis(key, "choice", tuple(args))
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if len(numbers) != len(args) or not all(math.isfinite(n) for n in numbers):
        raise ValueError(f"{kind}() takes finite numbers, found {', '.join(map(repr, args)) or 'nothing'}")
    if kind == "range":
        if not 1 <= len(args) <= 3 or not all(isinstance(a, int) for a in args):
            raise ValueError("range() takes 1 to 3 integers: range(stop), range(start, stop[, step])")
        if len(args) == 3 and args[2] == 0:
            raise ValueError("range() step must not be 0")
        if len(range(*args)) > MAX_GRID:
            raise ValueError(f"range() of {len(range(*args))} values (at most {MAX_GRID})")
        values = tuple(range(*args))
        if not values:
            raise ValueError("range() is empty")
        return Axis(key, "choice", values)
    if len(args) != 2 or args[0] > args[1]:
        raise ValueError(f"{kind}(low, high) takes two numbers with low <= high")
    low, high = float(args[0]), float(args[1])
    if kind == "loguniform" and low <= 0:
        raise ValueError("loguniform(low, high) needs low > 0")
    if kind == "intuniform":
        if not all(isinstance(a, int) for a in args):
            raise ValueError("intuniform(low, high) takes integers")
        return Axis(key, "int", (), low, high)
    return Axis(key, kind, (), low, high)  # type: ignore[arg-type]


def flatten_axes(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"optimizer": {"lr": [...]}}`` and ``{"optimizer.lr": [...]}`` alike: ``("optimizer.lr", [...])``."""
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from flatten_axes(value, path)
        else:
            yield path, value


def parse_axes(table: dict[str, Any]) -> list[Axis]:
    """Every axis of a ``[sweep.axes]`` table; the first bad one raises ``ValueError`` naming its key."""
    axes = []
    for key, spec in flatten_axes(table):
        try:
            axes.append(parse_axis(key, spec))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
    return axes


def _check_axes(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None  # the type check reports it
    try:
        parse_axes(value)
    except ValueError as exc:
        return str(exc)
    return None


@attrs.define
class SweepConfig:
    """Keys of ``[sweep]`` that every sweeper reads, next to the sweeper's own parameters."""

    axes: dict[str, Any] = param(
        {},
        doc='Recipe keys to vary: "key.path" = [values] or an expression: choice(...), range(...), '
        "uniform(low, high), loguniform(low, high), intuniform(low, high). -o key=choice(...) adds one.",
        check=_check_axes,
    )
    trials: int | None = param(
        None, doc="Trials to run (default: every grid point; required by random search).", check=at_least(1)
    )
    parallel: int = param(1, doc="Trials running at once, each a runner run process.", check=at_least(1))
    metric: str = param(
        "",
        doc="The validation metric to optimize: accuracy, main/accuracy or val/main/loss "
        "(default: the first validation metric, accuracy before loss).",
    )
    mode: Literal["auto", "max", "min"] = param(
        "auto", doc='"max" or "min"; "auto": min for losses and errors, max otherwise.'
    )
    seed: int = param(0, doc="Seed of the search (random draws, samplers).", check=between(0, 2**63 - 1))
