"""early_stopping: when it stops, why it says so, its checks, its state across a resume."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from cb_helpers import DIGITS, FakeRun, val_record

from runner import RunnerError
from runner_callbacks import plugin as callbacks_plugin
from runner_callbacks.early_stopping import EarlyStopping


def feed(callback: EarlyStopping, run: FakeRun, values: list[float], name: str = "loss") -> list[int]:
    """Validation records with ``values``; the steps at which the run was asked to stop."""
    stops = []
    for step, value in enumerate(values, 1):
        callback.on_log(run, val_record(step * 10, **{name: value}))
        if run.should_stop and not stops:
            stops.append(step * 10)
    return stops


def test_stops_after_patience_validations_without_improvement() -> None:
    run = FakeRun()
    callback = EarlyStopping(monitor="val/main/loss", mode="min", patience=2)
    assert feed(callback, run, [1.0, 0.8, 0.9, 0.85, 0.7]) == [40]
    assert run.stop_reason == "early stopping: val/main/loss did not improve for 2 validations (best 0.8 at step 20)"
    assert run.summary["early_stopping"] == {
        "monitor": "val/main/loss",
        "best": 0.8,
        "best_step": 20,
        "wait": 2,
        "stopped_step": 40,
    }


def test_max_mode_min_delta_and_nan() -> None:
    run = FakeRun()
    callback = EarlyStopping(monitor="val/main/f1_macro", mode="max", patience=2, min_delta=0.01)
    # +0.005 is not an improvement with min_delta 0.01; NaN never is
    assert feed(callback, run, [0.5, 0.505, math.nan], name="f1_macro") == [30]
    run = FakeRun()
    callback = EarlyStopping(monitor="val/main/f1_macro", mode="max", patience=2, min_delta=0.01)
    assert feed(callback, run, [0.5, 0.52, 0.515, 0.54, 0.53], name="f1_macro") == []


def test_only_its_loader_counts_and_train_records_are_ignored() -> None:
    run = FakeRun()
    callback = EarlyStopping(monitor="val/other/loss", patience=1)
    callback.on_log(run, {"stage": "train", "step": 1, "loss": 5.0})
    callback.on_log(run, val_record(10, loss=1.0))  # val/main: not watched
    assert callback.best is None and not run.should_stop


def test_a_missing_metric_is_one_clear_error() -> None:
    callback = EarlyStopping(monitor="val/main/f1_macro", mode="max")
    with pytest.raises(RunnerError, match=r"monitor 'val/main/f1_macro' is not in the val/main record \(it has: loss"):
        callback.on_log(FakeRun(), val_record(10, loss=1.0, accuracy=0.5))


def test_state_round_trip_continues_the_count_and_a_stopped_run_stays_stopped() -> None:
    run = FakeRun()
    first = EarlyStopping(patience=3)
    feed(first, run, [1.0, 1.1])
    state = json.loads(json.dumps(first.get_state()))  # plain JSON data
    resumed, later = EarlyStopping(patience=3), FakeRun()
    resumed.update_state(later, state)
    assert (resumed.best, resumed.best_step, resumed.wait) == (1.0, 10, 1)
    resumed.on_log(later, val_record(30, loss=1.2))
    assert not later.should_stop
    resumed.on_log(later, val_record(40, loss=1.3))
    assert later.should_stop
    again, restored = EarlyStopping(patience=3), FakeRun()
    again.update_state(restored, resumed.get_state())
    assert restored.should_stop and restored.stop_reason == later.stop_reason


def test_recipe_checks(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    plugins = (datasets_plugin, models_plugin, callbacks_plugin)
    bad = {
        'callbacks=[{name = "early_stopping", patience = 0}]': "patience: must be at least 1",
        'callbacks=[{name = "early_stopping", monitor = "loss"}]': "monitor: expected one of",
        'callbacks=[{name = "early_stopping", mode = "best"}]': "mode",
    }
    for override, message in bad.items():
        with pytest.raises(RunnerError, match=message):
            runner_tester.recipe(DIGITS, *plugins, overrides=(override,))


@pytest.mark.slow  # takes seconds
def test_a_monitor_naming_no_loader_fails_when_built(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    message = r"names the validation loader 'other'.*\(validation loaders: \[data.val.main\]\)"
    with pytest.raises(RunnerError, match=message):
        runner_tester.run(
            DIGITS,
            datasets_plugin,
            models_plugin,
            callbacks_plugin,
            overrides=('callbacks=[{name = "early_stopping", monitor = "val/other/loss"}]',),
        )


def test_a_run_stops_early_and_says_why(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    # lr 0: the validation loss never improves after the first validation
    outcome = runner_tester.run(
        DIGITS,
        datasets_plugin,
        models_plugin,
        callbacks_plugin,
        max_steps=None,
        overrides=(
            "optimizer.lr=0.0",
            "run.val_every=2",
            'callbacks=[{name = "early_stopping", patience = 2}]',
        ),
    )
    assert outcome.result.global_step == 6
    assert outcome.result.stop_reason.startswith("early stopping: val/main/loss did not improve for 2 validations")
    assert [r["step"] for r in outcome.records if r["stage"] == "val"] == [2, 4, 6]
    assert [r["stage"] for r in outcome.records][-1] == "test"  # validation and test still run
    summary = json.loads((outcome.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["extras"]["early_stopping"]["stopped_step"] == 6
    assert "early stopping" in outcome.result.summary("digits")
