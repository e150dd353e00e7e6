"""The plugin as the registry sees it: torch-free entry module, conformance, validation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ckpt_helpers import Cli, cli_fixture, write_recipe  # noqa: F401 (fixture)

import runner_checkpoint.plugin
from runner import RunnerError
from runner._plugins.registry import resolve_reference
from runner.testing import RunnerTester
from runner_checkpoint.checkpointer import DefaultCheckpointer
from runner_checkpoint.params import CheckpointParams


@pytest.mark.parametrize("module", ["plugin", "cli", "store", "verify_resume"])
def test_modules_that_must_not_import_torch(module: str) -> None:
    """The entry module (registration), and ``runner checkpoints``, stay fast."""
    code = f"import sys, runner_checkpoint.{module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_registration_is_lazy() -> None:
    """The entry module builds no attrs class: the declaration is a lazy reference."""
    code = "import sys, runner_checkpoint.plugin; sys.exit('runner_checkpoint.params' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
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
