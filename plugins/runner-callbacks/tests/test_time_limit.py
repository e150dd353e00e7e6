"""time_limit: stops at the end of a step once the budget is spent, and the checkpointer saves there."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cb_helpers import DIGITS, FakeRun

from runner import RunnerError
from runner_callbacks import plugin as callbacks_plugin
from runner_callbacks.time_limit import TimeLimit


def test_requests_a_stop_once_the_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("runner_callbacks.time_limit.time.monotonic", lambda: now[0])
    callback = TimeLimit(minutes=2)
    run = FakeRun()
    now[0] += 119
    run.global_step = 5
    callback.on_end_train_step(run)
    assert not run.should_stop
    now[0] += 1
    run.global_step = 6
    callback.on_end_train_step(run)
    assert run.should_stop and run.stop_reason == "time limit of 2 min reached"
    assert run.summary["time_limit"] == {"minutes": 2, "stopped_step": 6}


@pytest.mark.slow  # starts processes
def test_stops_the_run_and_the_checkpointer_saves_there(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    checkpoint_plugin = pytest.importorskip("runner_checkpoint.plugin")
    outcome = runner_tester.run(
        DIGITS,
        datasets_plugin,
        models_plugin,
        callbacks_plugin,
        checkpoint_plugin,
        max_steps=None,
        overrides=(
            'callbacks=[{name = "time_limit", minutes = 1e-6}]',
            'checkpoint={name = "default", every_epoch = false}',
        ),
    )
    assert outcome.result.global_step == 1
    assert outcome.result.stop_reason == "time limit of 1e-06 min reached"
    latest = (outcome.run_dir / "checkpoints" / "latest").read_text(encoding="utf-8").strip()
    assert latest == "step-000001"
    manifest = json.loads((outcome.run_dir / "checkpoints" / latest / "manifest.json").read_text(encoding="utf-8"))
    assert "end" in json.dumps(manifest)  # saved by save_last, where training stopped
    assert [r["stage"] for r in outcome.records][-2:] == ["val", "test"]


def test_a_checkpointer_that_would_not_save_is_refused(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    checkpoint_plugin = pytest.importorskip("runner_checkpoint.plugin")
    with pytest.raises(RunnerError, match=r"save_last = false would not save the run it stops"):
        runner_tester.run(
            DIGITS,
            datasets_plugin,
            models_plugin,
            callbacks_plugin,
            checkpoint_plugin,
            overrides=(
                'callbacks=[{name = "time_limit", minutes = 5}]',
                'checkpoint={name = "default", save_last = false}',
            ),
        )


def test_minutes_must_be_positive(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    for override, message in {
        'callbacks=[{name = "time_limit", minutes = 0}]': "minutes: must be above 0",
        'callbacks=[{name = "time_limit"}]': "minutes",
    }.items():
        with pytest.raises(RunnerError, match=message):
            runner_tester.recipe(DIGITS, datasets_plugin, models_plugin, callbacks_plugin, overrides=(override,))
