"""How a ddp job ends when something happens to its processes: the launcher is SIGKILLed
or SIGTERMed, a rank hangs, a rank dies while a checkpointer's collective runs.

Each test drives ``runner run`` through the CLI in its own session, as a scheduler or a
container runtime would, and checks what a user sees: exit status, one error line, the
run directory, nothing left running (``runner_leftovers``) or in the temporary directory,
and, after a stop, a resume that is byte for byte the uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ddp_helpers import clean_env, pids_alive, recipe, run_cli, write_recipe

from runner.testing import runner_command

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

TIMEOUT_S = 20  # [backend] timeout_s of the test recipes
#: Steps per epoch: 60 samples, 2 ranks x batches of 3.
STEPS_PER_EPOCH = 10


def checkpointed(log_every: int = 3, **faults: Any) -> dict[str, Any]:
    """2 ranks, 3 epochs (30 steps), runner-checkpoint every 4 steps: a save is rarely at a
    log step, so each rank's pending training losses are in it."""
    tree = recipe(epochs=3, record=False, faults=faults)
    del tree["backend"]["start_method"]  # the default: forkserver on Linux CPU
    tree["run"]["log_every"] = log_every
    tree["checkpoint"] = {"name": "default", "every_n_steps": 4, "keep_last": 20}
    return tree


@pytest.fixture
def own_tmp(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment whose temporary directory is the test's: what the launcher leaves in
    it (its reports, multiprocessing's fork server socket) can be checked."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    yield clean_env(TMPDIR=str(tmp))


def temporary_leftovers(tmp_path: Path) -> list[str]:
    """What the runs left in their temporary directory (torch's compile cache is meant to stay)."""
    return sorted(p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor_"))


def start(args: list[str | Path], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``runner ARGS`` in a session of its own (its pid is the launcher's), output in ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*runner_command(), *map(str, args)], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 240) -> None:
    """Wait until ``path`` exists and holds ``text``."""
    deadline = time.monotonic() + timeout
    while not path.exists() or text not in path.read_text(encoding="utf-8"):
        assert process.poll() is None, f"the run ended early (status {process.returncode})"
        assert time.monotonic() < deadline, f"{text!r} did not appear in {path}"
        time.sleep(0.02)


def metrics(run_dir: Path) -> bytes:
    return (run_dir / "metrics.jsonl").read_bytes()


def uninterrupted(tmp_path: Path, tree: dict[str, Any], env: dict[str, str]) -> bytes:
    path = write_recipe(tmp_path / "r.toml", tree)
    ran = run_cli("run", path, "--run-dir", tmp_path / "uninterrupted", "--no-progress", env=env)
    assert ran.returncode == 0, ran
    return metrics(tmp_path / "uninterrupted")


def resume(tmp_path: Path, run_dir: Path, env: dict[str, str]) -> str:
    ran = run_cli("run", tmp_path / "r.toml", "--run-dir", run_dir, "--no-progress", "--resume", env=env)
    assert ran.returncode == 0, ran
    return ran.stderr


def test_sigkill_of_the_launcher_ends_every_worker_and_the_resume_is_exact(
    tmp_path: Path, own_tmp: dict[str, str]
) -> None:
    """The launcher alone is SIGKILLed (the OOM killer, a crash) while rank 0 holds after
    step 9: the workers die with it at once (they used to train on and finish the run),
    nothing stays in the temporary directory, and the resume from step 8 (pending losses of
    steps 7 and 8 on each rank) writes exactly the uninterrupted run's records."""
    tree = checkpointed()
    expected = uninterrupted(tmp_path, tree, own_tmp)
    run_dir, progress = tmp_path / "killed", tmp_path / "progress.txt"
    env = {**own_tmp, "RUNNER_CHECKPOINT_PROGRESS": str(progress), "RUNNER_CHECKPOINT_HOLD": "step:9"}
    launcher = start(["run", tmp_path / "r.toml", "--run-dir", run_dir, "--no-progress"], env, tmp_path / "log.txt")
    try:
        wait_for(progress, "hold step 9", launcher)
        launcher.kill()
        launcher.wait()
        killed = time.monotonic()
        while pids_alive(run_dir) and time.monotonic() - killed < 10:
            time.sleep(0.05)
        assert pids_alive(run_dir) == [], "workers outlived their launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    while temporary_leftovers(tmp_path) and time.monotonic() - killed < 10:
        time.sleep(0.1)  # the janitor removes the launcher's directories
    assert temporary_leftovers(tmp_path) == []
    time.sleep(1)
    assert not (run_dir / "summary.json").exists()
    records = metrics(run_dir)
    assert expected.startswith(records) and len(records) < len(expected)
    log = resume(tmp_path, run_dir, own_tmp)
    assert "step-000008 (step 8, epoch 0)" in log
    assert metrics(run_dir) == expected


def test_sigterm_to_the_launcher_alone_saves_stops_fast_and_resumes_exactly(
    tmp_path: Path, own_tmp: dict[str, str]
) -> None:
    """A container stop: SIGTERM to the launcher's pid only, while every rank pauses in
    step 9. The launcher forwards it; the ranks finish step 10, agree, save step 10 (with
    the losses of steps 9 and 10 each rank has not logged yet), and the launcher exits 143
    with the summary line in seconds, not after the agent's 15 s grace. The resume writes
    exactly the uninterrupted run's records."""
    tree = checkpointed(log_every=4, pause_at_step=9, pause_s=4.0)
    expected = uninterrupted(tmp_path, tree, own_tmp)
    run_dir, log = tmp_path / "stopped", tmp_path / "log.txt"
    launcher = start(["run", tmp_path / "r.toml", "--run-dir", run_dir, "--no-progress"], own_tmp, log)
    try:
        wait_for(run_dir / "paused-rank0.txt", "", launcher)
        signalled = time.monotonic()
        launcher.send_signal(signal.SIGTERM)
        code = launcher.wait(120)
        took = time.monotonic() - signalled
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    text = log.read_text(encoding="utf-8")
    assert code == 128 + signal.SIGTERM, text
    assert took < 15, f"{took:.1f} s from SIGTERM to exit:\n{text}"
    assert "checkpoint: received SIGTERM: saved" in text and "step-000010" in text, text
    assert "stopped: SIGTERM: saved step-000010 at step 10" in text, text
    assert "error:" not in text, text
    assert temporary_leftovers(tmp_path) == []
    resume(tmp_path, run_dir, own_tmp)
    assert metrics(run_dir) == expected


def test_sigterm_to_the_process_group_saves_once_and_resumes_exactly(tmp_path: Path, own_tmp: dict[str, str]) -> None:
    """Every process gets the SIGTERM (``kill -- -PGID``): the workers count it themselves,
    the launcher does not forward a second one (which would stop them at once, unsaved),
    and the fork server survives it."""
    tree = checkpointed(log_every=4, pause_at_step=9, pause_s=4.0)
    expected = uninterrupted(tmp_path, tree, own_tmp)
    run_dir, log = tmp_path / "stopped", tmp_path / "log.txt"
    launcher = start(["run", tmp_path / "r.toml", "--run-dir", run_dir, "--no-progress"], own_tmp, log)
    try:
        wait_for(run_dir / "paused-rank0.txt", "", launcher)
        os.killpg(launcher.pid, signal.SIGTERM)
        code = launcher.wait(120)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    text = log.read_text(encoding="utf-8")
    assert code == 128 + signal.SIGTERM, text
    assert "stopped: SIGTERM: saved step-000010 at step 10" in text, text
    resume(tmp_path, run_dir, own_tmp)
    assert metrics(run_dir) == expected


def test_a_hung_rank_is_named_within_the_timeout(tmp_path: Path) -> None:
    """Rank 1 stops (SIGSTOP) in step 3 while rank 0 goes on into a collective: the job
    ends within timeout_s + 10 s, naming rank 1 as the one that stopped responding, not
    rank 0's timeout inside runner-checkpoint's hook."""
    tree = recipe(faults={"rank": 1, "step": 3, "kind": "stop"}, epochs=50, record=False)
    tree["checkpoint"] = {"name": "default", "every_n_steps": 1}
    ran = run_cli("run", write_recipe(tmp_path / "r.toml", tree), "--run-dir", tmp_path / "run", "--no-progress")
    assert ran.returncode == 2, ran
    assert len(ran.errors) == 1, ran
    assert ran.errors[0].startswith("rank 1 (pid "), ran
    assert "stopped responding: no heartbeat for" in ran.errors[0] and "SIGSTOP" in ran.errors[0], ran
    fault = float((tmp_path / "run" / "fault.txt").read_text(encoding="utf-8"))
    assert ran.ended - fault < TIMEOUT_S + 10, ran
    assert pids_alive(tmp_path / "run") == []


@pytest.mark.parametrize("every_n_steps", [1, 0])
def test_a_dead_rank_is_blamed_not_the_checkpointer(tmp_path: Path, every_n_steps: int) -> None:
    """Rank 1 is SIGKILLed in step 3. Rank 0 fails in whatever collective it is in: the
    checkpointer's state capture (every step), the core's signal agreement or DDP's
    gradient all-reduce (no checkpointer); the error names rank 1 every time, never a plugin."""
    tree = recipe(faults={"rank": 1, "step": 3, "kind": "kill"}, epochs=50, record=False)
    if every_n_steps:
        tree["checkpoint"] = {"name": "default", "every_n_steps": every_n_steps}
    run_dir = tmp_path / "run"
    ran = run_cli("run", write_recipe(tmp_path / "r.toml", tree), "--run-dir", run_dir, "--no-progress")
    assert ran.returncode == 2, ran
    assert len(ran.errors) == 1, ran
    assert ran.errors[0].startswith("rank 1 (pid "), ran
    assert "plugin" not in ran.errors[0], ran
    assert pids_alive(run_dir) == []
