"""Claiming run directories (runner._engine.claim and ``runner run``): runner writes only
into directories it created or that hold a runner run, never over other files, one run
at a time; ``--resume`` before any checkpoint starts from the beginning; OS errors are
one line naming the path (issue 18, items 3, 4, 5 and 7).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import HERMETIC_ENV

from runner._engine.claim import (
    DirectoryHoldsRun,
    DirectoryInUse,
    ForeignDirectory,
    claim,
    claim_default,
)
from runner._engine.rundir import MARKER_FILE
from runner.testing import CliResult, run_cli

Run = Callable[..., CliResult]  # unpacks as (exit code, stdout, stderr)

CHECKPOINTER = """
from runner import hookimpl


class Nothing:
    '''A checkpointer that never saved: restore finds nothing.'''

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def restore(self, run, source):
        return False


@hookimpl
def register_checkpointers(register):
    register("nothing", Nothing)
"""

#: ``runner run`` arguments that resume with the ``nothing`` checkpointer (written by ``run``).
RESUME = ("-p", "nothing.py", "-o", 'checkpoint={name = "nothing"}', "--resume")


@pytest.fixture
def run(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(*args)`` runs ``runner run toy.toml ARGS`` in-process in the toy directory:
    (exit status, stdout, stderr)."""
    monkeypatch.chdir(toy_dir)
    (toy_dir / "nothing.py").write_text(CHECKPOINTER, encoding="utf-8")
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str) -> CliResult:
        return run_cli("run", "toy.toml", "--no-progress", "-o", "run.max_steps=2", *args)

    return invoke


def contents(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()) if p.is_file()}


# -- never over other files (item 3) ----------------------------------------------------------


def test_a_directory_of_other_files_is_refused_and_left_alone(run: Run, toy_dir: Path) -> None:
    (toy_dir / "summary.json").write_text("mine\n", encoding="utf-8")
    before = contents(toy_dir)
    code, out, err = run("--run-dir", ".")
    assert (code, out) == (2, "")
    assert err == (
        "error: run directory . is not empty and holds no runner run (nothing.py, summary.json, toy.toml, ...); "
        "runner never writes over other files: choose another --run-dir (a new or empty directory)\n"
    )
    assert contents(toy_dir) == before and not (toy_dir / MARKER_FILE).exists()


@pytest.mark.parametrize("name", ["recipe.toml", "summary.json", "heartbeat.json", "metrics.jsonl"])
def test_no_file_runner_writes_is_overwritten(run: Run, toy_dir: Path, name: str) -> None:
    (toy_dir / "mine").mkdir()
    (toy_dir / "mine" / name).write_text("the user's\n", encoding="utf-8")
    for resume in ((), RESUME):
        code, _, err = run("--run-dir", "mine", *resume)
        assert code == 2 and "holds no runner run" in err
    assert contents(toy_dir / "mine") == {name: "the user's\n"}


def test_runner_writes_into_a_new_or_empty_directory_and_marks_it(run: Run, toy_dir: Path) -> None:
    (toy_dir / "empty").mkdir()
    for target in ("empty", "new/nested"):
        code, out, _ = run("--run-dir", target)
        assert code == 0 and out.endswith(f" -> {target}\n")
        marker = json.loads((toy_dir / target / MARKER_FILE).read_text(encoding="utf-8"))
        assert marker["pid"] == os.getpid() and {"runner", "host", "claimed"} <= set(marker)


def test_a_run_directory_from_before_the_marker_is_still_a_run(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "heartbeat.json").write_text('{"pid": 1, "host": "h", "started": 0, "ended": 1}\n', encoding="utf-8")
    (old / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(DirectoryHoldsRun):
        claim(old, resume=False)
    with claim(old, resume=True):
        assert (old / MARKER_FILE).exists()
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "heartbeat.json").write_text('{"mine": true}\n', encoding="utf-8")
    with pytest.raises(ForeignDirectory):
        claim(tmp_path / "fake", resume=True)


# -- one run at a time (item 4) --------------------------------------------------------------


def test_a_second_run_into_a_claimed_directory_is_refused_at_once(run: Run, toy_dir: Path) -> None:
    with claim(toy_dir / "busy", resume=False):  # another run holds it (flock is per open file)
        for resume in ((), RESUME):
            code, out, err = run("--run-dir", "busy", *resume)
            assert (code, out) == (2, "")
            assert err == (
                f"error: run directory busy is in use by another run (pid {os.getpid()} on {os.uname().nodename}); "
                "wait for it to end or choose another --run-dir\n"
            )
        assert sorted(p.name for p in (toy_dir / "busy").iterdir()) == [MARKER_FILE]
    assert run("--run-dir", "busy")[0] == 0  # released


def test_a_second_run_under_the_default_name_takes_the_next_free_directory(run: Run, toy_dir: Path) -> None:
    with claim(toy_dir / "runs" / "toy", resume=False):
        code, out, _ = run()
        assert code == 0 and out.endswith(" -> runs/toy-1\n")
    assert sorted(p.name for p in (toy_dir / "runs" / "toy").iterdir()) == [MARKER_FILE]
    assert run()[1].endswith(" -> runs/toy\n")  # a claim that wrote nothing is free again
    assert run()[1].endswith(" -> runs/toy-2\n")


def test_claim_default_skips_runs_live_claims_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / MARKER_FILE).touch()
    (tmp_path / "x" / "metrics.jsonl").touch()  # a finished run
    (tmp_path / "x-1").mkdir()
    (tmp_path / "x-1" / "notes.txt").touch()  # someone else's files
    (tmp_path / "x-2").write_text("a file\n", encoding="utf-8")
    with claim(tmp_path / "x-3", resume=False), claim_default(tmp_path, "x") as claimed:
        assert claimed.path == tmp_path / "x-4"
        with pytest.raises(DirectoryInUse):
            claim(tmp_path / "x-4", resume=True)


@pytest.mark.slow
def test_two_processes_and_a_killed_holder(tmp_path: Path) -> None:
    """The lock is the OS's: another process is refused, and a killed holder frees it."""
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from runner._engine.claim import claim
        claim(Path({str(tmp_path / "run")!r}), resume=False)
        print("claimed", flush=True)
        time.sleep(60)
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "claimed\n"
            with pytest.raises(DirectoryInUse, match=rf"\(pid {holder.pid} on "):
                claim(tmp_path / "run", resume=True)
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(30)
    with claim(tmp_path / "run", resume=True):
        pass


@pytest.mark.slow
def test_a_forked_child_does_not_keep_the_directory_locked(tmp_path: Path) -> None:
    """Loader workers are forked from the run: one still alive when the run is killed
    must not hold the lock (a restart with --resume would be refused)."""
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from runner._engine.claim import claim
        claim(Path({str(tmp_path / "run")!r}), resume=False)
        child = os.fork()
        if child == 0:
            print("child running", flush=True)
            time.sleep(60)
            os._exit(0)
        print(child, flush=True)
        os._exit(0)  # the run dies without releasing its claim
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as run:
        assert run.stdout is not None
        lines = sorted([run.stdout.readline(), run.stdout.readline()])  # the child has run its fork handlers
        assert lines[1] == "child running\n", lines
        child = int(lines[0])
        try:
            assert run.wait(30) == 0
            os.kill(child, 0)  # still alive
            with claim(tmp_path / "run", resume=True):
                pass
        finally:
            os.kill(child, signal.SIGKILL)


# -- --resume before any checkpoint (item 5) ----------------------------------------------------


def test_resume_without_a_checkpoint_starts_from_the_beginning(run: Run, toy_dir: Path) -> None:
    args = (*RESUME, "--run-dir", "ck")
    for attempt in range(2):  # a first start, then a restart after a crash before any checkpoint
        code, out, err = run(*args)
        assert code == 0, err
        assert err == "no checkpoint in ck yet: starting from the beginning\n"
        assert out.startswith("toy: 2 steps")
        records = (toy_dir / "ck" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(r)["step"] for r in records] == [2, 2], attempt  # not appended to
    code, _, err = run(*args, "--resume", "ck/missing-checkpoint")
    assert (code, err) == (2, "error: no valid checkpoint to resume from in ck/missing-checkpoint\n")


# -- OS errors (item 7) ---------------------------------------------------------------------------


def test_a_run_directory_under_a_file_is_one_line(run: Run) -> None:
    for resume in ((), RESUME):
        code, _, err = run("--run-dir", "toy.toml/run", *resume)
        assert (code, err) == (2, "error: cannot create run directory toy.toml/run: Not a directory\n")


@pytest.mark.parametrize(
    ("call", "code", "message"),
    [
        ("mkdir", errno.EROFS, "cannot create run directory ro/run: Read-only file system"),
        ("open", errno.EROFS, f"cannot write to run directory ro/run: Read-only file system (ro/run/{MARKER_FILE})"),
        ("fsync", errno.ENOSPC, "cannot write to run directory ro/run: No space left on device"),
    ],
)
def test_read_only_and_full_disks_are_one_line(
    run: Run, toy_dir: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int, message: str
) -> None:
    """Root ignores permissions here, so the OS calls themselves fail, as they do on a
    read-only mount or a full disk, for paths under ro/."""
    (toy_dir / "ro").mkdir()
    if call != "mkdir":
        (toy_dir / "ro" / "run").mkdir()
    owner, attribute = {"mkdir": (Path, "mkdir"), "open": (os, "open"), "fsync": (os, "fsync")}[call]
    original = getattr(owner, attribute)

    def failing(*args: object, **kwargs: object) -> object:
        name = None if call == "fsync" else str(args[0])
        if name is None or Path(name).parts[:1] == ("ro",):
            raise OSError(code, os.strerror(code), name)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, attribute, failing)
    for resume in ((), RESUME):
        assert run("--run-dir", "ro/run", *resume) == (2, "", f"error: {message}\n")


@pytest.mark.parametrize("filename", [None, "full/recipe.toml"])
def test_a_full_disk_during_the_run_is_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch, filename: str | None
) -> None:
    import runner._engine.run as engine

    def full(recipe: object) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)

    monkeypatch.setattr(engine, "render_resolved", full)
    code, out, err = run("--run-dir", "full")
    assert (code, out, err) == (2, "", f"error: {filename or 'full'}: No space left on device\n")
