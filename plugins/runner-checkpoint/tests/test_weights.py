"""Checkpointed weights for predict, export and runner.load: ``--checkpoint best|last|DIR``
through the ``load_model_weights`` hook, reading only the model's files, verified."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ckpt_helpers import ENV, Cli, cli_fixture, write_recipe  # noqa: F401 (fixture)

import runner
from runner_checkpoint import checkpoint
from runner_checkpoint.manifest import CorruptCheckpoint
from runner_checkpoint.store import Store
from runner_checkpoint.weights import find_checkpoint, load_model_weights

MONITORED = {"name": "default", "every_n_steps": 4, "keep_last": 1, "keep_best": 1, "monitor": "val/main/accuracy"}


@pytest.fixture
def run_dir(cli: Cli, tmp_path: Path) -> Path:
    recipe = write_recipe(tmp_path / "r.toml", checkpoint=MONITORED, **{"run.epochs": 2, "callbacks": []})
    run = tmp_path / "run"
    assert cli("run", recipe, "--run-dir", run, "--no-progress").code == 0
    return run


@pytest.mark.slow  # takes seconds
def test_best_and_last_name_the_checkpoints_retention_kept(run_dir: Path) -> None:
    entries = Store(run_dir / "checkpoints").entries()
    assert len(entries) == 2  # keep_last 1 and keep_best 1: the newest and the best differ here
    last = find_checkpoint(run_dir, "last")
    assert last is not None and last.name == (run_dir / "checkpoints" / "latest").read_text().strip()
    best = max((e for e in entries if e.monitor is not None), key=lambda e: (e.monitor[1], e.seq))  # type: ignore[index]
    assert find_checkpoint(run_dir, "best") == best.path
    assert find_checkpoint(run_dir, str(best.path)) == best.path
    assert find_checkpoint(run_dir, "ema") is None  # not a checkpoint: another plugin's (or nobody's)


@pytest.mark.slow  # takes seconds
def test_the_model_weights_equal_the_checkpoints_state(run_dir: Path) -> None:
    best = find_checkpoint(run_dir, "best")
    assert best is not None
    weights = load_model_weights(best)
    state = checkpoint.load(best).state["model"]
    assert weights.keys() == state.keys() and all(torch.equal(weights[k], state[k]) for k in state)


@pytest.mark.slow  # takes seconds
def test_runner_load_and_predict_use_them(run_dir: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    best = find_checkpoint(run_dir, "best")
    assert best is not None
    loaded = runner.load(run_dir, checkpoint="best")
    expected = load_model_weights(best)
    assert all(torch.equal(v, expected[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.weights == "checkpoint best (plugin runner-checkpoint 0.1.0)"
    done = cli("predict", run_dir, "--split", "val.main", "--checkpoint", "last")
    assert done.code == 0, done.err
    assert f"checkpoint: model weights from {find_checkpoint(run_dir, 'last')} (step " in done.err


@pytest.mark.slow  # takes seconds
def test_damaged_weights_are_refused_by_name(run_dir: Path) -> None:
    best = find_checkpoint(run_dir, "best")
    assert best is not None
    weights = best / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match=r"model.safetensors: sha256 expected [0-9a-f]{64}, actual"):
        load_model_weights(best)


def test_best_needs_a_monitored_metric(cli: Cli, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path / "r.toml", **{"run.epochs": 1, "callbacks": []})
    assert cli("run", recipe, "--run-dir", tmp_path / "run", "--no-progress").code == 0
    with pytest.raises(runner.RunnerError, match="no checkpoint recorded a monitored metric, so none is best"):
        find_checkpoint(tmp_path / "run", "best")
    done = cli("predict", tmp_path / "run", "--split", "test", "--checkpoint", "best")
    assert done.code == 2 and "no checkpoint recorded a monitored metric" in done.err


def test_saving_the_model_or_not_does_not_break_exact_resume() -> None:
    from runner_checkpoint.provenance import is_breaking

    assert not is_breaking("run.save_model")  # the model file is written after training; the run is the same
    assert is_breaking("run.seed")
