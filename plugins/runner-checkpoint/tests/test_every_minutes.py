"""Time-triggered saves (signals are the core's: core/tests/test_signals.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ckpt_helpers import Cli, cli_fixture, isolate_process_state, write_recipe  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow  # every test here starts processes


def test_every_minutes_saves_on_time(cli: Cli, tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path / "r.toml",
        **{
            "run.epochs": 1,
            "checkpoint": {"name": "default", "every_minutes": 1e-6, "every_epoch": False, "keep_last": 100},
        },
    )
    result = cli("run", recipe, "--run-dir", tmp_path / "run", "--no-progress")
    assert result.code == 0, result.err
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "run" / "checkpoints").glob("step-*/manifest.json")]
    reasons = sorted(m["reason"] for m in manifests)
    assert reasons.count("time") >= 10 and reasons.count("end") == 1
