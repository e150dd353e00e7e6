"""``runner sweep RECIPE``: run the recipe's ``[sweep]`` (or ``-o key=choice(...)`` axes)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import click

from runner._cli.common import recipe_options, recipe_path
from runner._cli.state import AppState
from runner._contract.errors import RecipeError, RunnerError
from runner._contract.sweep import EXPRESSION, Axis, SweepConfig, parse_axes, parse_axis
from runner._sweep.ledger import Trial
from runner._sweep.sweep import Sweep, shown_params, toml_value

PLAN_FILE = "sweep.json"
LOCK_FILE = ".lock"


def split_overrides(overrides: tuple[str, ...]) -> tuple[list[str], list[Axis]]:
    """Plain overrides (applied to every trial) and axes (``-o key=choice(...)``)."""
    plain: list[str] = []
    axes: list[Axis] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and EXPRESSION.match(value):
            try:
                axes.append(parse_axis(key.strip(), value))
            except ValueError as exc:
                raise RunnerError(f"<command line> -o {item}: {exc}") from None
        else:
            plain.append(item)
    return plain, axes


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the sweep directory: two sweeps in one directory would run the same trials."""
    with open(directory / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunnerError(f"sweep directory {directory} is in use by another runner sweep") from None
        yield


def check_plan(directory: Path, plan: dict[str, Any]) -> int:
    """Write the plan into a new sweep directory, or check a resumed one holds the same
    plan; returns how many trials are on record."""
    from runner._sweep.ledger import read_ledger

    path = directory / PLAN_FILE
    text = json.dumps(plan, indent=2, sort_keys=True, default=str) + "\n"
    if not path.exists():
        path.write_text(text, encoding="utf-8")
        return 0
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None
    if earlier != json.loads(text):
        raise RunnerError(
            f"sweep directory {directory} holds another sweep (its {PLAN_FILE} differs: recipe, overrides, axes, "
            "sweeper, trials or seed changed); choose another --sweep-dir to start a new sweep"
        )
    return sum(1 for trial in read_ledger(directory).values() if trial.done)


def _first_point(axes: list[Axis]) -> list[str]:
    """Overrides setting every axis to a value it takes (to validate the axes' keys before any trial)."""
    out = []
    for axis in axes:
        value = axis.values[0] if axis.finite else (int(axis.low) if axis.kind == "int" else axis.low)
        out.append(f"{axis.key}={toml_value(value)}")
    return out


def summary_lines(sweep: Sweep, trials: list[Trial]) -> list[str]:
    """The table ``runner sweep`` prints: trials best first, then the best one."""
    metric = sweep.metric or next((t.metric for t in trials if t.metric), "") or "metric"
    larger = sweep.maximize if sweep.metric else not _lower(metric)

    def order(trial: Trial) -> tuple[Any, ...]:
        unscored = trial.value is None or trial.status == "failed"
        value = trial.value if trial.value is not None else 0.0
        return (unscored, -value if larger else value, trial.number)

    lines = [f"sweep {sweep.directory}: {len(trials)} trials, {metric} ({'max' if larger else 'min'})"]
    for trial in sorted(trials, key=order):
        value = "-" if trial.value is None else f"{trial.value:.6g}"
        lines.append(f"  trial {trial.number:>3}  {trial.status:<8}  {value:>10}  {shown_params(trial.params)}")
    best = sweep.best()
    if best is not None:
        lines.append(f"best: trial {best.number} ({metric} {best.value:.6g}) -> {best.run_dir}")
    return lines


def _lower(metric: str) -> bool:
    from runner._sweep.metric import maximize

    return not maximize(metric, "auto")


@click.command("sweep")
@recipe_path
@recipe_options
@click.option(
    "--sweep-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the trials' run directories and the ledger go (default: sweeps/<run name>). "
    "A directory holding the same sweep is resumed: trials that ended are not run again.",
)
@click.option("--parallel", type=click.IntRange(min=1), help="Trials at once (default: [sweep] parallel).")
@click.option("--trials", type=click.IntRange(min=1), help="Number of trials (default: [sweep] trials).")
@click.pass_context
def sweep_command(
    ctx: click.Context,
    recipe: str,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    sweep_dir: Path | None,
    parallel: int | None,
    trials: int | None,
) -> None:
    """Run many trials of RECIPE, each a normal run: the [sweep] table's axes, plus
    -o KEY=choice(...) / range(...) / uniform(...) / loguniform(...) / intuniform(...).

    \b
    Sweepers: grid and random (built in); optuna (runner-optuna), ray (runner-ray).
    Kill it and run the same command again: finished trials are not run again.
    """
    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    plain, extra_axes = split_overrides(overrides)
    _, validated = state.load_recipe(recipe, plain)
    section = validated.sections.get("sweep")
    name = section.name if section is not None else "grid"
    params: dict[str, Any] = dict(section.params) if section is not None else {}
    framework = section.framework if section is not None else attrs.asdict(SweepConfig())
    axes = {axis.key: axis for axis in parse_axes(framework["axes"])}
    axes.update({axis.key: axis for axis in extra_axes})
    if not axes:
        raise RunnerError(
            f'{recipe}: nothing to sweep: add a [sweep] table with axes ("optimizer.lr" = [1e-3, 1e-2]) '
            "or pass -o 'key=choice(a, b)'"
        )
    try:
        state.load_recipe(recipe, [*plain, *_first_point(list(axes.values()))])
    except RecipeError as exc:
        raise RunnerError("; ".join(f"sweep axis: {p}" for p in exc.problems)) from None
    directory = (sweep_dir if sweep_dir is not None else Path("sweeps") / validated.run.name).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(
        recipe=os.path.abspath(recipe),
        directory=directory,
        axes=tuple(axes.values()),
        trials=trials if trials is not None else framework["trials"],
        parallel=parallel if parallel is not None else framework["parallel"],
        metric=framework["metric"],
        mode=framework["mode"],
        seed=framework["seed"],
        params=params,
        overrides=tuple(plain),
        plugins=tuple(spec for spec in state.local_specs if not spec.startswith("no:")),
        cwd=os.getcwd(),
    )
    plan = {
        "recipe": sweep.recipe,
        "overrides": list(sweep.overrides),
        "axes": [attrs.asdict(axis) for axis in sweep.axes],
        "sweeper": {"name": name, **params},
        "trials": sweep.trials,
        "seed": sweep.seed,
        "metric": sweep.metric,
        "mode": sweep.mode,
    }
    component = state.plugins.registry.get("sweeper", name)
    sweeper = component.build(params)
    if not callable(getattr(sweeper, "run", None)):
        raise RunnerError(f"sweeper {name!r} (plugin {component.plugin}) has no run(sweep) method")
    with locked(directory):
        done = check_plan(directory, plan)
        if done:
            sweep.say(f"resuming {directory}: {done} trial(s) on record are not run again")
        sweeper.run(sweep)
    for line in summary_lines(sweep, sorted(sweep.ledger().values(), key=lambda t: t.number)):
        click.echo(line)
