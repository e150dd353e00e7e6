"""The plugin as the registry sees it: torch-free entry module, conformance, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ckpt_helpers import PLUGIN, Cli, cli_fixture, write_recipe  # noqa: F401 (fixture)

import runner_checkpoint.plugin
from runner import RunnerError
from runner._plugins.registry import resolve_reference
from runner.testing import RunnerTester, assert_entry_module_torch_free
from runner_checkpoint.checkpointer import DefaultCheckpointer
from runner_checkpoint.params import CheckpointParams


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("module", ["plugin", "cli", "store", "verify_resume", "weights"])
def test_modules_that_must_not_import_torch(module: str) -> None:
    """The entry module (registration), and ``runner checkpoints``, stay fast."""
    assert_entry_module_torch_free(f"runner_checkpoint.{module}")


@pytest.mark.slow  # starts processes
def test_registration_is_lazy() -> None:
    """The entry module builds no attrs class: the declaration is a lazy reference."""
    assert_entry_module_torch_free("runner_checkpoint.plugin", also=("runner_checkpoint.params",))
    found: dict[str, Any] = {}

    def register(name: str, factory: Any, *, params: type | str | None = None, doc: str | None = None) -> None:
        found[name] = (factory, params, doc)

    runner_checkpoint.plugin.register_checkpointers(register=register)
    factory, params, doc = found["default"]
    assert factory == "runner_checkpoint.params:CheckpointParams" and params is None and doc is None
    assert resolve_reference(factory) is CheckpointParams


def test_components_conform(runner_tester: RunnerTester) -> None:
    assert runner_tester.check_components(runner_checkpoint.plugin) == []


def test_keep_best_needs_a_monitor(tmp_path: Path, cli: Cli) -> None:
    assert isinstance(CheckpointParams(keep_best=2, monitor="val/main/accuracy").build(tmp_path), DefaultCheckpointer)
    with pytest.raises(RunnerError, match="keep_best needs monitor"):
        CheckpointParams(keep_best=2).build(tmp_path)
    result = cli("recipe", "check", write_recipe(tmp_path / "r.toml", **{"checkpoint.keep_best": 2}))
    assert result.code == 2
    assert 'checkpoint.keep_best: keep_best needs monitor (e.g. monitor = "val/main/accuracy")' in result.err


def test_bad_parameters_are_recipe_errors(cli: Cli, tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path / "r.toml", **{"checkpoint.mode": "best", "checkpoint.every_n_steps": 0, "checkpoint.evry_epoch": True}
    )
    result = cli("recipe", "check", recipe)
    assert result.code == 2
    assert "checkpoint.mode" in result.err and "checkpoint.every_n_steps" in result.err
    assert "checkpoint.evry_epoch" in result.err and "every_epoch" in result.err  # did you mean


@pytest.mark.parametrize("from_step", [0, 3])
def test_unstorable_plugin_state_names_its_key_and_plugin(cli: Cli, tmp_path: Path, from_step: int) -> None:
    """A set in a plugin's state is that plugin's error, named by state key, reported when
    training starts (or at the save where it first appears), not blamed on runner-checkpoint."""
    callbacks = [{"name": "ckpt_counter"}, {"name": "ckpt_bad_state", "from_step": from_step}]
    recipe = write_recipe(
        tmp_path / "r.toml", callbacks=callbacks, **{"run.max_steps": 6, "run.epochs": None, "run.val_every": None}
    )
    result = cli("run", recipe, "--run-dir", tmp_path / "run", "--no-progress")
    assert result.code == 2
    assert result.err.strip() == (
        "error: state key 'ckpt_bad/seen' (returned by get_state of callback 'ckpt_bad_state' from plugin "
        f"{PLUGIN} local): cannot store a set at ['ids'] in a checkpoint; return dicts, lists, numbers, "
        "strings, bools, None, tensors or numpy arrays"
    )
    steps = [json.loads(line).get("step") for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(steps, default=0) == (0 if from_step == 0 else 4)  # at the start, or at the first save (step 4)
    checkpoints = tmp_path / "run" / "checkpoints"
    assert not checkpoints.exists() or [p.name for p in checkpoints.iterdir()] == []
