"""Two processes with runner-ddp (skipped when it is not installed): rank 0 writes, every
rank restores, the signal/time agreement runs every step, and the resume is exact, also
through ``runner verify-resume``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ckpt_helpers import Cli, cli_fixture, finish, isolate_process_state, spawn, write_recipe  # noqa: F401

pytest.importorskip("runner_ddp")

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

ENV = {"RUNNER_PLUGINS": "checkpoint,ddp"}


def test_two_process_run_resumes_exactly(tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path / "r.toml",
        **{"run.backend": "ddp", "backend": {"nproc_per_node": 2}, "run.epochs": 2, "checkpoint.keep_last": 100},
    )
    first = finish(spawn("run", recipe, "--run-dir", tmp_path / "a", "--no-progress", env=ENV))
    assert first.code == 0, first.err
    # 50 samples over 2 ranks, batches of 4: 7 steps per epoch; saves at 4, 7 (epoch), 8, 12, 14 (end).
    names = sorted(p.name for p in (tmp_path / "a" / "checkpoints").glob("step-*"))
    assert names == ["step-000004", "step-000007", "step-000008", "step-000012", "step-000014"]
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    source = tmp_path / "b" / "checkpoints" / "step-000008"
    again = finish(spawn("run", recipe, "--run-dir", tmp_path / "b", "--no-progress", "--resume", source, env=ENV))
    assert again.code == 0, again.err
    assert again.err.count("checkpoint: resumed from") == 1  # rank 0 speaks for all
    assert (tmp_path / "b" / "metrics.jsonl").read_bytes() == (tmp_path / "a" / "metrics.jsonl").read_bytes()


def test_verify_resume_kills_a_two_process_run_for_real(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher is SIGKILLed while rank 0 holds after step 9 (checkpoints every 4 steps,
    a record every 3: the resume from step 8 carries each rank's unlogged losses). Its
    workers die with it (they used to finish the run themselves, so "identical" proved
    nothing), and the resumed run matches byte for byte."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    recipe = write_recipe(
        tmp_path / "r.toml",
        **{"run.backend": "ddp", "backend": {"nproc_per_node": 2}, "run.epochs": 2, "run.log_every": 3},
        checkpoint=None,
    )
    result = cli("verify-resume", recipe, "--kill-at", "9", "--hold", "--save-every", "4", "--work-dir", tmp_path / "w")
    assert result.code == 0, result.out + result.err
    assert "killed after observing: hold step 9" in result.out
    assert "resumed from" in result.out and "step-000008" in result.out
    assert result.out.rstrip().splitlines()[-1].startswith("identical: ")
