"""What counts as a breaking recipe change (provenance.run_changes), without training."""

from __future__ import annotations

from typing import Any

from runner_checkpoint import provenance

RECIPE: dict[str, Any] = {"run": {"epochs": 3, "log_every": 10}, "optimizer": {"name": "adamw", "lr": 0.02}}


def prov(epochs: int = 3, total: int = 39, per_epoch: int = 13, schedulers: int = 1, **recipe: Any) -> dict[str, Any]:
    tree = {**RECIPE, "run": {**RECIPE["run"], "epochs": epochs}, **recipe}
    schedule = {"total_steps": total, "steps_per_epoch": per_epoch, "schedulers": schedulers}
    return {"recipe": tree, "schedule": schedule}


def shown(changes: list[provenance.Change]) -> list[str]:
    return [str(change) for change in changes]


def test_a_longer_run_breaks_the_schedule_of_a_scheduler() -> None:
    changes = provenance.run_changes(prov(), prov(epochs=4, total=52))
    assert shown(changes) == [
        "! run.epochs: 3 -> 4  (breaks exact resume: changes the learning-rate schedule)",
        "! schedule.total_steps: 39 -> 52  (breaks exact resume: changes the learning-rate schedule)",
    ]


def test_without_a_scheduler_the_length_is_harmless() -> None:
    changes = provenance.run_changes(prov(schedulers=0), prov(epochs=4, total=52, schedulers=0))
    assert not any(change.breaking for change in changes)
    assert "  run.epochs: 3 -> 4" in shown(changes)


def test_a_length_change_that_leaves_the_schedule_alone_is_harmless() -> None:
    """With max_steps deciding, epochs no longer sets the total steps."""
    saved = prov(run={"epochs": 3, "max_steps": 30, "log_every": 10}, total=30)
    current = prov(run={"epochs": 5, "max_steps": 30, "log_every": 10}, total=30)
    assert shown(provenance.run_changes(saved, current)) == ["  run.epochs: 3 -> 5"]


def test_a_schedule_change_without_a_recipe_change_is_caught() -> None:
    """More data: more steps per epoch, the same recipe."""
    changes = provenance.run_changes(prov(), prov(total=45, per_epoch=15))
    breaking = [change.path for change in changes if change.breaking]
    assert breaking == ["schedule.steps_per_epoch", "schedule.total_steps"]


def test_an_older_checkpoint_without_a_schedule_counts_any_length_change() -> None:
    saved = {"recipe": prov()["recipe"]}
    assert [c.breaking for c in provenance.run_changes(saved, prov(epochs=4, total=52))] == [True]
    assert [c.breaking for c in provenance.run_changes(saved, prov(epochs=4, total=52, schedulers=0))] == [False]


def test_a_local_plugin_file_is_known_by_name_and_content() -> None:
    """A run continued from its run directory loads the copy there: same plugin."""
    original = [{"name": "helpers", "distribution": "/src/helpers.py", "version": "local", "sha256": "a"}]
    copy = [{"name": "helpers", "distribution": "/runs/x/plugins/helpers.py", "version": "local", "sha256": "a"}]
    edited = [{**copy[0], "sha256": "b"}]
    assert provenance.plugin_changes(original, copy) == []
    changed = provenance.plugin_changes(original, edited)
    assert changed == ["  plugin helpers.py (local): file changed since the checkpoint"]
