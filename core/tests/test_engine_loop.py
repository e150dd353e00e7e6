"""The training loop, end to end on the toy plugin, in-process (runner._engine).

The toy recipe trains a linear classifier on 64 samples in batches of 8 (8 optimizer steps
per epoch) for 2 epochs, logging every 2 steps and validating on 32 samples. ``probe``
callbacks record what the hooks saw (gradient norms, applied updates, final weights).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import TOY, TOY_PLUGIN, Trained, check_recipe

from runner._contract.errors import PluginError
from runner._engine.run import execute
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

Train = Callable[..., Trained]
PROBE = '\n[[callbacks]]\nname = "probe"\n'


def close(a: object, b: object, tol: float = 1e-6) -> bool:
    """Nested lists/dicts of floats equal within ``tol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b, strict=True))
    assert isinstance(a, float) and isinstance(b, float)
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def test_a_run_writes_metrics_resolved_recipe_and_summary(train: Train) -> None:
    run = train()
    train_records = run.stage("train")
    expected = [(0, 2), (0, 4), (0, 6), (0, 8), (1, 10), (1, 12), (1, 14), (1, 16)]
    assert [(r["epoch"], r["step"]) for r in train_records] == expected
    assert all(set(r) == {"stage", "epoch", "step", "loss", "accuracy", "lr"} for r in train_records)
    assert all(r["lr"] == 0.5 and 0 <= r["accuracy"] <= 1 for r in train_records)
    assert [(r["key"], r["epoch"], r["step"]) for r in run.stage("val")] == [("main", 0, 8), ("main", 1, 16)]
    assert all(set(r) == {"stage", "key", "epoch", "step", "loss", "accuracy"} for r in run.stage("val"))
    assert [r["stage"] for r in run.records] == ["train"] * 4 + ["val"] + ["train"] * 4 + ["val"]

    summary = json.loads((run.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert (summary["global_step"], summary["epochs"], summary["stop_reason"]) == (16, 2, "")
    assert summary["metrics"]["val/main"] == {k: run.stage("val")[-1][k] for k in ("loss", "accuracy")}
    assert summary["run_dir"] == str(run.run_dir)
    assert run.result.global_step == 16


def test_the_written_recipe_is_the_resolved_recipe(train: Train, toy_manager: PluginManager) -> None:
    run = train()
    original = validate(read_recipe(run.run_dir.parent / "recipe-1.toml"), toy_manager.registry)
    written = validate(read_recipe(run.run_dir / "recipe.toml"), toy_manager.registry)
    assert written.resolved == original.resolved


@pytest.mark.slow  # takes seconds
def test_training_learns_the_toy_problem(train: Train) -> None:
    val = train().stage("val")
    assert val[-1]["loss"] < val[0]["loss"] < math.log(2)
    assert val[-1]["accuracy"] >= 0.9


def test_hooks_fire_in_order(train: Train) -> None:
    probe = train(text=TOY + PROBE).probe
    assert probe is not None
    steps = [["step", s] for s in range(1, 9)]
    assert probe["events"] == [
        ["begin_train"],
        ["begin_epoch", 0, 0],
        *steps,
        ["val", "main", 8],
        ["end_epoch", 0, 8],
        ["begin_epoch", 1, 8],
        *[["step", s + 8] for s in range(1, 9)],
        ["val", "main", 16],
        ["end_epoch", 1, 16],
        ["end_train", 16],
        ["teardown"],
    ]


@pytest.mark.slow  # takes seconds
def test_same_seed_same_metrics_other_seed_other_metrics(train: Train) -> None:
    first, second = train(), train()
    assert first.records == second.records
    assert (first.run_dir / "metrics.jsonl").read_bytes() == (second.run_dir / "metrics.jsonl").read_bytes()
    assert train("run.seed=1").records != first.records


# -- optimisation --------------------------------------------------------------------


def test_gradient_accumulation_matches_a_larger_batch(train: Train) -> None:
    accumulated = train("data.train.loader.batch_size=8", "run.grad_accum=4", "run.epochs=3", text=TOY + PROBE)
    large = train("data.train.loader.batch_size=32", "run.epochs=3", text=TOY + PROBE)
    assert accumulated.result.global_step == large.result.global_step == 6  # optimizer steps, not micro-batches
    assert accumulated.probe and large.probe
    assert len(accumulated.probe["backward_grad_norms"]) == 24 and len(large.probe["backward_grad_norms"]) == 6
    assert close(accumulated.probe["weights"], large.probe["weights"], tol=1e-5)


def test_a_trailing_partial_accumulation_averages_over_its_own_micro_batches(train: Train) -> None:
    # 8 micro-batches of 8 with grad_accum = 3: groups of 3, 3 and 2 micro-batches,
    # exactly like batches of 24, 24 and 16 samples.
    accumulated = train("run.grad_accum=3", "run.epochs=1", "data.train.loader.shuffle=false", text=TOY + PROBE)
    large = train(
        "data.train.loader.batch_size=24", "run.epochs=1", "data.train.loader.shuffle=false", text=TOY + PROBE
    )
    assert accumulated.result.global_step == large.result.global_step == 3
    assert accumulated.probe and large.probe
    assert close(accumulated.probe["weights"], large.probe["weights"], tol=1e-5)


def test_clip_grad_norm_bounds_the_applied_gradient(train: Train) -> None:
    clipped = train("run.clip_grad_norm=0.1", "run.epochs=1", text=TOY + PROBE).probe
    assert clipped is not None
    raw, applied = clipped["backward_grad_norms"], clipped["applied_grad_norms"]
    assert max(raw) > 0.1  # clipping had something to do
    assert all(norm <= 0.1 * (1 + 1e-4) for norm in applied)
    assert all(math.isclose(a, min(r, 0.1), rel_tol=1e-3) for r, a in zip(raw, applied, strict=True))


def test_without_clipping_the_full_gradient_is_applied(train: Train) -> None:
    probe = train("run.epochs=1", text=TOY + PROBE).probe
    assert probe is not None
    pairs = zip(probe["backward_grad_norms"], probe["applied_grad_norms"], strict=True)
    assert all(math.isclose(raw, applied, rel_tol=1e-3) for raw, applied in pairs)


# -- how long, and when to validate ----------------------------------------------------


def test_max_steps_stops_exactly(train: Train) -> None:
    run = train("run.max_steps=11", text=TOY.replace("epochs = 2\n", "") + PROBE)
    assert run.result.global_step == 11
    assert run.probe and [e[1] for e in run.probe["events"] if e[0] == "step"] == list(range(1, 12))
    assert [r["step"] for r in run.stage("train")] == [2, 4, 6, 8, 10]
    # epoch-end validation after epoch 0, and a final one where training stopped
    assert [(r["epoch"], r["step"]) for r in run.stage("val")] == [(0, 8), (1, 11)]
    assert run.result.epochs == 2


def test_max_steps_wins_over_epochs(train: Train) -> None:
    assert train("run.max_steps=3").result.global_step == 3
    assert train("run.max_steps=20", "run.epochs=1").result.global_step == 20


@pytest.mark.parametrize(("every", "expected"), [(3, [3, 6, 9, 12, 15, 16]), (4, [4, 8, 12, 16]), (16, [16])])
def test_val_every_validates_at_multiples_of_n(train: Train, every: int, expected: list[int]) -> None:
    run = train(f"run.val_every={every}")
    assert [r["step"] for r in run.stage("val")] == expected  # plus once at the end when not a multiple


def test_val_every_counts_optimizer_steps(train: Train) -> None:
    run = train("run.val_every=2", "run.grad_accum=2", "run.epochs=1")
    assert [r["step"] for r in run.stage("val")] == [2, 4]


def test_early_stop_from_a_callback(train: Train) -> None:
    run = train(text=TOY + '\n[[callbacks]]\nname = "stop_after"\nsteps = 3\n' + PROBE)
    assert run.result.global_step == 3
    assert run.result.stop_reason == "stop_after reached step 3"
    assert [r["step"] for r in run.stage("val")] == [3]
    assert run.probe and run.probe["events"][-3:] == [["val", "main", 3], ["end_train", 3], ["teardown"]]
    summary = json.loads((run.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["stop_reason"] == "stop_after reached step 3"
    assert "stopped: stop_after reached step 3" in run.result.summary("toy")


def test_early_stop_at_an_epoch_end_skips_the_remaining_epochs(train: Train) -> None:
    run = train("run.epochs=5", text=TOY + '\n[[callbacks]]\nname = "stop_after"\nsteps = 8\n')
    assert run.result.global_step == 8
    assert [r["step"] for r in run.stage("val")] == [8]


# -- evaluation ------------------------------------------------------------------------


def test_validation_metrics_are_sample_weighted_whatever_the_batch_size(train: Train) -> None:
    # 32 validation samples in batches of 5 (last batch 2) or all at once: same means.
    small = train("run.epochs=1", "data.val.main.loader.batch_size=5").stage("val")[-1]
    whole = train("run.epochs=1", "data.val.main.loader.batch_size=32").stage("val")[-1]
    assert math.isclose(small["loss"], whole["loss"], rel_tol=1e-6)
    assert math.isclose(small["accuracy"], whole["accuracy"], rel_tol=1e-6)


def test_keyed_validation_and_test_loaders(train: Train) -> None:
    text = (
        TOY
        + """
[data.val.small]
dataset = { name = "toy", split = "val", n = 8 }

[data.test.held_out]
dataset = { name = "toy", split = "test", n = 16 }
"""
    )
    run = train("run.epochs=1", text=text)
    assert [(r["stage"], r["key"]) for r in run.records if r["stage"] != "train"] == [
        ("val", "main"),
        ("val", "small"),
        ("test", "held_out"),
    ]
    assert set(run.result.metrics) == {"train", "val/main", "val/small", "test/held_out"}
    assert [r["stage"] for r in train("run.epochs=1", "run.test=false", text=text).records].count("test") == 0


def test_max_val_batches_limits_evaluation(train: Train) -> None:
    limited = train("run.epochs=1", "run.max_val_batches=1", "data.val.main.loader.batch_size=8").stage("val")[-1]
    first_eight = train("run.epochs=1", "data.val.main.dataset.n=8").stage("val")[-1]
    assert math.isclose(limited["loss"], first_eight["loss"], rel_tol=1e-6)


def test_fast_and_general_data_paths_train_identically(train: Train) -> None:
    tensors = train()
    rows = train(text=TOY.replace('{ name = "toy", n = 64 }', '{ name = "toy_rows", n = 64 }'))
    assert tensors.records == rows.records


# -- loggers and plugin failures during a run ------------------------------------------

EXTRAS = """
from runner import hookimpl

SEEN = []


class Flaky:
    def __init__(self, run_dir, fail_after: int = 0):
        self.fail_after = fail_after
        self.records = []

    def log(self, record):
        if len(self.records) >= self.fail_after:
            raise ConnectionError("tracking server went away")
        self.records.append(record)


class Crash:
    def on_end_train_step(self, run, global_step):
        if global_step == 2:
            raise ZeroDivisionError("threshold / 0")


@hookimpl
def on_log(run, record):
    SEEN.append(dict(record))


@hookimpl
def register_loggers(register):
    register("flaky", Flaky)


@hookimpl
def register_callbacks(register):
    register("crash", Crash)
"""


@pytest.fixture
def extras(write_plugin: Callable[[str, str], str]) -> tuple[Any, Any]:
    path = write_plugin("extras", EXTRAS)
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), path], use_entry_points=False).load()
    return manager, sys.modules["runner_local_extras"]


def test_on_log_sees_every_record_and_a_failing_logger_is_disabled_with_one_warning(
    extras: tuple[Any, Any], tmp_path: Path
) -> None:
    manager, module = extras
    recipe = check_recipe(TOY + '\n[[loggers]]\nname = "flaky"\nfail_after = 3\n', manager, tmp_path)
    with pytest.warns(RuntimeWarning) as warned:
        execute(recipe, manager, tmp_path / "run", show_progress=False)
    [warning] = warned  # once, not once per record
    assert str(warning.message).startswith("logger from plugin ")
    assert str(warning.message).endswith(
        "extras.py local failed and is disabled: ConnectionError: tracking server went away"
    )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == module.SEEN  # training went on, every record written
    assert len(lines) == 10


def test_a_raising_callback_names_its_plugin_and_leaves_the_manager_reusable(
    extras: tuple[Any, Any], tmp_path: Path
) -> None:
    manager, _ = extras
    crashing = check_recipe(TOY + '\n[[callbacks]]\nname = "crash"\n', manager, tmp_path)
    with pytest.raises(PluginError) as caught:
        execute(crashing, manager, tmp_path / "crashed", show_progress=False)
    assert str(caught.value).startswith("plugin ")
    assert str(caught.value).endswith(" local: hook on_end_train_step raised ZeroDivisionError: threshold / 0")
    assert "extras.py" in str(caught.value)
    # the run's callback objects were unregistered: the same manager trains a clean recipe
    clean = check_recipe(TOY, manager, tmp_path, name="clean.toml")
    assert execute(clean, manager, tmp_path / "clean", show_progress=False).global_step == 16
