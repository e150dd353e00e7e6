"""[run] compile and checkpoints: the model is compiled in place, so its state dict keys
are the uncompiled module's (no ``_orig_mod.`` prefix) and a compiled run's checkpoint
resumes an uncompiled run, and back (compiling changes the numerics slightly, so the
recipe change needs --allow-recipe-change)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.testing import CliResult, run_cli_subprocess

ROOT = Path(__file__).resolve().parents[3]
RECIPE = ROOT / "recipes" / "digits_checkpoint.toml"


def runner(*args: str) -> CliResult:
    return run_cli_subprocess(*args, env={"OMP_NUM_THREADS": "1"}, timeout=900)


def model_keys(run_dir: Path) -> list[str]:
    """Tensor names in the latest checkpoint's model.safetensors (read from its JSON header)."""
    latest = (run_dir / "checkpoints" / "latest").read_text(encoding="utf-8").strip()
    data = (run_dir / "checkpoints" / latest / "model.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    return sorted(k for k in header if k != "__metadata__")


@pytest.mark.slow
@pytest.mark.parametrize(("first", "then"), [("true", "false"), ("false", "true")])
def test_checkpoints_move_between_compiled_and_uncompiled_runs(tmp_path: Path, first: str, then: str) -> None:
    pytest.importorskip("runner_datasets")
    pytest.importorskip("runner_models")
    run_dir = tmp_path / "run"
    common = ["--no-progress", "-o", "checkpoint.every_n_steps=2", "-o", "run.test=false"]
    started = runner(
        "run", str(RECIPE), "--run-dir", str(run_dir), "-o", "run.max_steps=4", "-o", f"run.compile={first}", *common
    )
    assert started.returncode == 0, started.stderr
    assert model_keys(run_dir) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    refused = runner(
        "run",
        str(RECIPE),
        "--run-dir",
        str(run_dir),
        "--resume",
        "-o",
        "run.max_steps=6",
        "-o",
        f"run.compile={then}",
        *common,
    )
    assert refused.returncode == 2 and "run.compile" in refused.stderr, refused.stderr
    resumed = runner(
        "run",
        str(RECIPE),
        "--run-dir",
        str(run_dir),
        "--resume",
        "--allow-recipe-change",
        "-o",
        "run.max_steps=6",
        "-o",
        f"run.compile={then}",
        *common,
    )
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 6
    assert model_keys(run_dir) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 6 and sorted(set(steps)) == sorted(steps)  # resumed, not restarted
