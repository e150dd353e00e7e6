"""An installed runner-ddp acts only on runs that chose the ``ddp`` backend: its sharding
hooks are methods of the backend object, not module-level hooks that fire in every run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner._engine.run import execute
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner_ddp import sharding

ROOT = Path(__file__).resolve().parents[3]
OVERRIDES = ("run.max_steps=12", "run.log_every=2", "run.val_every=6", 'checkpoint={name="default", every_n_steps=5}')


def _train(tmp_path: Path, name: str, disabled: tuple[str, ...]) -> list[dict[str, object]]:
    manager = PluginManager(disabled=disabled).load()
    assert ("ddp" in {p.name for p in manager.plugins()}) is not bool(disabled)
    recipe = validate(read_recipe(ROOT / "recipes" / "digits.toml", OVERRIDES), manager.registry, manager.failures)
    execute(recipe, manager, tmp_path / name, show_progress=False)
    lines = (tmp_path / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_an_installed_ddp_plugin_leaves_single_process_runs_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[str] = []
    for name in ("unpad_eval_loaders", "position", "resume"):
        monkeypatch.setattr(sharding, name, lambda *args, _name=name, **kwargs: called.append(_name))
    with_ddp = _train(tmp_path, "installed", disabled=())
    without = _train(tmp_path, "disabled", disabled=("ddp",))
    assert called == []  # no setup, get_state (checkpoints were saved) or update_state of runner-ddp
    assert with_ddp == without
    assert sorted(p.name for p in (tmp_path / "installed" / "checkpoints").glob("step-*"))
