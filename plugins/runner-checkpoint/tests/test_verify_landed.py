"""``runner verify-resume`` compares runs only when the kill landed: no process of the
killed run is left, and its run directory is unfinished."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from runner import RunnerError
from runner_checkpoint import verify_resume
from runner_checkpoint.verify_resume import Killed, popen, run_and_kill

#: A stand-in for ``runner run``: starts a process that outlives it (as a worker without a
#: lifeline would), then reports step 5, and waits to be killed.
ORPHANING = """
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
with open(os.environ["RUNNER_CHECKPOINT_PROGRESS"], "a") as events:  # the orphan exists: let the kill come
    events.write("step 5\\n")
time.sleep(60)
"""


def _orphaning(args: list[str], env: dict[str, str], log: Path) -> verify_resume.Handle:
    import subprocess

    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", ORPHANING], env=env, stdout=out, stderr=out)


@pytest.mark.slow  # starts processes
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="processes are found through /proc")
def test_a_kill_that_leaves_a_process_of_the_run_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify_resume, "SETTLE_S", 1.0)
    started = time.monotonic()
    with pytest.raises(RunnerError, match=r"the kill did not land: 1 process\(es\) of the interrupted run") as caught:
        run_and_kill(
            ["run"],
            tmp_path / "progress.txt",
            "step",
            5,
            hold=False,
            log=tmp_path / "log",
            timeout=60,
            launch=_orphaning,
        )
    assert time.monotonic() - started < 30
    orphan = int(str(caught.value).partition("(pids ")[2].partition(";")[0])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
        if ") Z" in Path(f"/proc/{orphan}/stat").read_text():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{orphan}").exists() or ") Z" in Path(f"/proc/{orphan}/stat").read_text()


@pytest.mark.slow  # starts processes
def test_runs_start_in_a_process_group_of_their_own(tmp_path: Path) -> None:
    handle = popen(["--help"], dict(os.environ), tmp_path / "log")
    try:
        assert os.getpgid(handle.pid) == handle.pid
    finally:
        handle.wait()


def test_an_unfinished_run_directory_is_required(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2}\n', encoding="utf-8")
    Killed.read(tmp_path).check(complete=3)
    with pytest.raises(RunnerError, match="had written all 2 records before the kill landed"):
        Killed.read(tmp_path).check(complete=2)
    (tmp_path / "summary.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RunnerError, match=r"had finished before the kill landed \(it wrote summary.json\)"):
        Killed.read(tmp_path).check(complete=3)
