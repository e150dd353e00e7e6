"""The ``ray`` sweeper without starting Ray: registration, validation, search spaces, ASHA and its replay.

Ray Tune is imported (a couple of seconds) but no Ray instance is started; the sweeps that
run on a local Ray instance are in ``test_ray_tune_runs.py``.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from runner import RecipeError, RunnerError, Sweep, Trial
from runner._contract.sweep import parse_axis
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

pytest.importorskip("ray.tune", reason="Ray Tune is not installed here: pip install 'runner-ray[ray]'")

from runner_ray.tune_space import (
    OBJECTIVE,
    STEP,
    WORST,
    grid_trials,
    objective,
    random_trials,
    search_space,
    to_values,
)
from runner_ray.tune_sweeper import make_scheduler, plan, replay

RECIPE = """
[run]
max_steps = 4
[data.train]
dataset = { name = "synthetic", split = "train" }
[model]
name = "mlp"
[task]
name = "classification"
[optimizer]
name = "sgd"
[sweep]
name = "ray"
trials = 2
[sweep.axes]
"optimizer.lr" = "loguniform(1e-4, 1e-1)"
"""

AXES = (
    parse_axis("model.hidden", [[16], [64, 64]]),
    parse_axis("optimizer.lr", "loguniform(1e-4, 1e-1)"),
    parse_axis("optimizer.momentum", "uniform(0.5, 0.9)"),
    parse_axis("data.train.loader.batch_size", "intuniform(1, 3)"),
)


# -- registration and validation --------------------------------------------------------

PROBE = """
import sys
from runner._cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
else:
    code = 0
print("heavy:", sorted(m for m in ("ray", "torch") if m in sys.modules), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("args", [["sweep", "--help"], ["plugins"], ["recipe", "check", "tiny.toml"]], ids=" ".join)
def test_the_cli_around_the_sweeper_imports_neither_ray_nor_torch(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "tiny.toml").write_text(RECIPE, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "heavy: []", result.stderr
    if args == ["plugins"]:
        assert "sweepers: ray" in result.stdout


def test_sweeper_parameters_are_validated_at_their_keys(tmp_path: Path) -> None:
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    overrides = (
        "sweep.search=grd",
        "sweep.reduction_factor=1",
        "sweep.grace_period=0",
        "sweep.cpus_per_tril=2",
        "sweep.gpus_per_trial=-1",
    )
    manager = PluginManager().load()
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(recipe, overrides), manager.registry, manager.failures)
    text = str(caught.value)
    assert "sweep.search: expected one of 'random', 'grid'" in text and "did you mean 'grid'" in text
    assert "sweep.reduction_factor: must be greater than 1" in text
    assert "sweep.grace_period: must be at least 1" in text
    assert "sweep.cpus_per_tril: unknown key (did you mean 'cpus_per_trial'" in text
    assert "sweep.gpus_per_trial: must be at least 0" in text


# -- search spaces ------------------------------------------------------------------------


def test_each_axis_maps_onto_the_tune_domain_of_the_same_distribution() -> None:
    from ray import tune
    from ray.tune.search.sample import Categorical, Float, Integer

    space = search_space(AXES)
    hidden, lr, momentum, batch = (space[axis.key] for axis in AXES)
    assert isinstance(hidden, Categorical) and hidden.categories == [0, 1]  # indices: values may be arrays
    assert isinstance(lr, Float) and (lr.lower, lr.upper) == (1e-4, 1e-1)
    assert isinstance(lr.get_sampler(), type(tune.loguniform(1, 2).get_sampler()))
    assert isinstance(momentum, Float) and (momentum.lower, momentum.upper) == (0.5, 0.9)
    assert isinstance(momentum.get_sampler(), type(tune.uniform(1, 2).get_sampler()))
    # intuniform includes its upper end; Tune's randint excludes it.
    assert isinstance(batch, Integer) and (batch.lower, batch.upper) == (1, 4)


def test_a_tune_sample_becomes_recipe_values() -> None:
    sample = {"model.hidden": 1, "optimizer.lr": 0.01, "optimizer.momentum": 0.7, "data.train.loader.batch_size": 3}
    values = to_values(AXES, sample)
    assert values == {
        "model.hidden": [64, 64],
        "optimizer.lr": 0.01,
        "optimizer.momentum": 0.7,
        "data.train.loader.batch_size": 3,
    }


def test_random_trials_are_drawn_from_the_axes_and_keyed_by_seed_and_number() -> None:
    drawn = random_trials(AXES, seed=7, trials=40)
    assert [number for number, _ in drawn] == list(range(40))
    for _, values in drawn:
        assert values["model.hidden"] in ([16], [64, 64])
        assert 1e-4 <= values["optimizer.lr"] <= 1e-1 and type(values["optimizer.lr"]) is float
        assert 0.5 <= values["optimizer.momentum"] <= 0.9
        assert values["data.train.loader.batch_size"] in (1, 2, 3)
        assert type(values["data.train.loader.batch_size"]) is int
    assert {v["data.train.loader.batch_size"] for _, v in drawn} == {1, 2, 3}  # both ends included
    assert {str(v["model.hidden"]) for _, v in drawn} == {"[16]", "[64, 64]"}
    logs = [math.log10(v["optimizer.lr"]) for _, v in drawn]
    assert min(logs) < -3 and max(logs) > -2  # spread over the decades, not piled near the top

    # A restarted sweep (or a larger budget) proposes the same trial N.
    assert random_trials(AXES, seed=7, trials=40) == drawn
    assert random_trials(AXES, seed=7, trials=5) == drawn[:5]
    assert random_trials(AXES, seed=8, trials=5) != drawn[:5]


def test_grid_trials_take_every_combination_in_order() -> None:
    axes = (parse_axis("a", [1, 2]), parse_axis("b", "range(3)"))
    assert grid_trials(axes, None) == [
        (0, {"a": 1, "b": 0}),
        (1, {"a": 1, "b": 1}),
        (2, {"a": 1, "b": 2}),
        (3, {"a": 2, "b": 0}),
        (4, {"a": 2, "b": 1}),
        (5, {"a": 2, "b": 2}),
    ]
    assert [n for n, _ in grid_trials(axes, 2)] == [0, 1]
    with pytest.raises(RunnerError, match=r'search = "grid" needs finite axes.*optimizer.lr = loguniform'):
        grid_trials(AXES, None)


def test_random_search_needs_a_budget(tmp_path: Path) -> None:
    sweep = Sweep(recipe="r.toml", directory=tmp_path, axes=AXES)
    with pytest.raises(RunnerError, match=r"needs \[sweep\] trials = N"):
        plan(sweep, "random")
    assert len(plan(Sweep(recipe="r.toml", directory=tmp_path, axes=AXES, trials=3), "random")) == 3


def test_asha_needs_to_know_the_metric_or_its_direction(tmp_path: Path) -> None:
    from runner_ray.tune_params import RayTune

    sweeper = RayTune().build()
    with pytest.raises(RunnerError, match=r"set \[sweep\] metric .* or mode"):
        sweeper.run(Sweep(recipe="r.toml", directory=tmp_path, axes=AXES, trials=2))


def test_a_value_that_is_not_a_number_is_reported_as_the_worst() -> None:
    assert objective(0.25, maximize=True) == 0.25
    assert objective(math.nan, maximize=False) == WORST and objective(math.inf, maximize=False) == WORST
    assert objective(math.nan, maximize=True) == -WORST and objective(-math.inf, maximize=True) == -WORST


# -- ASHA, and the ledger replayed into it -------------------------------------------------


class Stand:
    """A Tune trial as ASHA sees it."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def first_decision(scheduler: object, value: float, step: int = 5, maximize: bool = False) -> str:
    new = Stand("new")
    scheduler.on_trial_add(None, new)  # type: ignore[attr-defined]
    result = {STEP: step, OBJECTIVE: objective(value, maximize), "training_iteration": 1}
    return str(scheduler.on_trial_result(None, new, result))  # type: ignore[attr-defined]


def ledger_trial(number: int, reports: tuple[tuple[int, float], ...], status: str = "finished") -> Trial:
    return Trial(number, {"optimizer.lr": 0.1}, status, min(v for _, v in reports), "", reports, "", "main/loss")


def test_asha_stops_a_trial_behind_the_ledgers_trials_at_a_rung() -> None:
    good = ledger_trial(0, ((5, 0.6), (10, 0.4), (15, 0.3)))
    scheduler = make_scheduler("asha", grace_period=5, reduction_factor=2, maximize=False)
    replay(scheduler, [good], maximize=False)
    assert first_decision(scheduler, 0.9) == "STOP"

    fresh = make_scheduler("asha", grace_period=5, reduction_factor=2, maximize=False)
    assert first_decision(fresh, 0.9) == "CONTINUE"  # nothing recorded at the rung: no cut-off

    better = make_scheduler("asha", grace_period=5, reduction_factor=2, maximize=False)
    replay(better, [good], maximize=False)
    assert first_decision(better, 0.5) == "CONTINUE"


def test_a_diverged_trial_is_stopped_whichever_way_the_metric_points() -> None:
    for maximize, recorded in ((False, 0.6), (True, 0.8)):
        scheduler = make_scheduler("asha", grace_period=5, reduction_factor=2, maximize=maximize)
        replay(scheduler, [ledger_trial(0, ((5, recorded),))], maximize=maximize)
        assert first_decision(scheduler, math.nan, maximize=maximize) == "STOP"


def test_asha_does_not_cut_before_the_grace_period() -> None:
    scheduler = make_scheduler("asha", grace_period=10, reduction_factor=2, maximize=False)
    replay(scheduler, [ledger_trial(0, ((5, 0.6), (10, 0.4)))], maximize=False)
    assert first_decision(scheduler, 0.9, step=5) == "CONTINUE"
    assert first_decision(scheduler, 0.9, step=10) == "STOP"


def test_scheduler_none_never_stops() -> None:
    scheduler = make_scheduler("none", grace_period=1, reduction_factor=2, maximize=False)
    assert first_decision(scheduler, math.nan) == "CONTINUE"
