"""recipes/digits.toml trains to the accuracy its comment promises, through the real engine."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runner_models import plugin as models_plugin

RECIPE = Path(__file__).resolve().parents[3] / "recipes" / "digits.toml"


@pytest.mark.slow
def test_digits_recipe_reaches_95_percent_validation_accuracy(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    started = time.perf_counter()
    outcome = runner_tester.run(RECIPE, datasets_plugin, models_plugin, max_steps=None)
    elapsed = time.perf_counter() - started
    val = [r for r in outcome.records if r["stage"] == "val"]
    assert [r["epoch"] for r in val] == list(range(10))
    assert val[-1]["accuracy"] >= 0.95, val[-1]
    assert outcome.result.metrics["test/main"]["accuracy"] >= 0.9
    train = [r for r in outcome.records if r["stage"] == "train"]
    assert train[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine over the whole run
    assert all("accuracy" in r for r in train)  # logged steps carry metrics
    assert elapsed < 60
