"""``runner verify-resume RECIPE --kill-at K``: prove that a recipe resumes exactly.

1. Train the recipe uninterrupted into ``WORK/uninterrupted``.
2. Train it again into ``WORK/interrupted`` with the ``default`` checkpointer saving every
   step (``--save-every``), watch its progress events and SIGKILL it once it reaches
   step K (``--during val``: the first validation at or after K; ``--hold``: the run waits
   at that point, so the kill lands exactly there). Only the ``runner run`` process is
   killed, as a crash or the OOM killer would; the kill must land: within
   :data:`SETTLE_S` no process of the run may be left (its workers die with it), and the
   run directory must be unfinished (no ``summary.json``, fewer records than the
   uninterrupted run), or the resume would not be tested and verify-resume says so.
3. Resume it with ``--resume`` and compare both ``metrics.jsonl`` byte for byte.

Prints ``identical`` or the first differing record; exits 1 when they differ. Every run
is a separate ``runner run`` process, exactly as a user would start it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import zip_longest
from pathlib import Path
from typing import Protocol

import attrs
import click

from runner import METRICS_FILE, SUMMARY_FILE, AppState, RunnerError, recipe_options, recipe_path
from runner_checkpoint import survivors
from runner_checkpoint.beacon import HOLD_ENV, PROGRESS_ENV

#: Seconds the processes of a killed run have to disappear (data-loader workers notice
#: their parent's death within a few seconds).
SETTLE_S = 20.0


def runner_argv(args: list[str]) -> list[str]:
    """The command line of ``runner ARGS`` with this interpreter."""
    return [sys.executable, "-m", "runner", *args]


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Handle(Protocol):
    """A started run (``subprocess.Popen`` is one)."""

    returncode: int | None
    pid: int

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


#: ``launch(args, env, log)`` starts ``runner ARGS`` with environment ``env``, output appended to ``log``.
Launch = Callable[[list[str], dict[str, str], Path], Handle]


def popen(args: list[str], env: dict[str, str], log: Path) -> Handle:
    """Start ``runner ARGS`` as a new process with this interpreter, in a process group
    (and session) of its own, so every process of the run can be found after a kill."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            runner_argv(args), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


#: How ``verify-resume`` starts its runs (tests may start them differently).
launcher: Launch = popen


def start(args: list[str], log: Path, launch: Launch | None = None) -> Handle:
    """Start ``runner ARGS`` with its output appended to ``log``."""
    return (launch or launcher)(args, dict(os.environ), log)


def wait(process: Handle, args: list[str], log: Path, timeout: float) -> None:
    """Wait for a run started by :func:`start`; raise with the log's tail if it fails."""
    try:
        code = process.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, TimeoutError):
        process.kill()
        process.wait()
        raise RunnerError(f"runner {' '.join(args)} did not finish within {timeout:.0f}s (log: {log})") from None
    if code != 0:
        raise RunnerError(f"runner {' '.join(args)} failed with exit status {code}:\n{_tail(log)}")


def run_to_end(args: list[str], log: Path, timeout: float, launch: Launch | None = None) -> None:
    """Run ``runner ARGS`` to completion; raise with the log's tail if it fails."""
    wait(start(args, log, launch), args, log, timeout)


def run_and_kill(
    args: list[str],
    progress: Path,
    kind: str,
    step: int,
    *,
    hold: bool,
    log: Path,
    timeout: float,
    launch: Launch | None = None,
) -> str:
    """Start ``runner ARGS``, SIGKILL it when its progress shows ``kind`` at step >= ``step``.

    Returns the event line that triggered the kill, once no process of the run is left
    (a RunnerError names those still running after :data:`SETTLE_S`, and they are killed).
    """
    tag = survivors.new_tag()
    env = {**os.environ, PROGRESS_ENV: str(progress), survivors.TAG_ENV: tag}
    if hold:
        env[HOLD_ENV] = f"{kind}:{step}"
    else:
        env.pop(HOLD_ENV, None)
    progress.write_text("", encoding="utf-8")
    deadline = time.monotonic() + timeout
    process = (launch or launcher)(args, env, log)
    group = _own_group(process.pid)
    try:
        with open(progress, encoding="utf-8") as events:
            buffered = ""
            while True:
                buffered += events.read()
                *lines, buffered = buffered.split("\n")
                for line in lines:
                    if _matches(line, kind, step, hold):
                        process.kill()
                        process.wait()
                        _check_landed(group, tag)
                        return line
                if process.poll() is not None:
                    raise RunnerError(
                        f"the run ended (exit status {process.returncode}) before reaching {kind} {step}; "
                        f"choose a smaller --kill-at:\n{_tail(log)}"
                    )
                if time.monotonic() > deadline:
                    raise RunnerError(f"the run did not reach {kind} {step} within {timeout:.0f}s (log: {log})")
                time.sleep(0.002)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _own_group(pid: int) -> int | None:
    """``pid``'s process group if it leads one (then the group is the run's), else None."""
    try:
        return pid if os.getpgid(pid) == pid else None
    except (ProcessLookupError, PermissionError):
        return None


def _check_landed(group: int | None, tag: str) -> None:
    """After the launcher's SIGKILL: every process of the run must be gone."""
    left = survivors.wait_gone(group, tag, SETTLE_S)
    if left:
        shown = ", ".join(f"group {-p}" if p < 0 else str(p) for p in left)
        raise RunnerError(
            f"the kill did not land: {len(left)} process(es) of the interrupted run were still running "
            f"{SETTLE_S:.0f} s after its runner process was killed (pids {shown}; killed now); they could "
            "finish the run on their own, so no resume would be tested"
        )


@attrs.frozen
class Killed:
    """What the interrupted run's directory held right after the kill."""

    finished: bool
    records: int

    @classmethod
    def read(cls, run_dir: Path) -> Killed:
        metrics = run_dir / METRICS_FILE
        records = metrics.read_bytes().count(b"\n") if metrics.is_file() else 0
        return cls((run_dir / SUMMARY_FILE).exists(), records)

    def check(self, complete: int) -> None:
        """Raise unless the run was unfinished: no summary, fewer than ``complete`` records."""
        if self.finished:
            raise RunnerError(
                "the interrupted run had finished before the kill landed (it wrote summary.json); "
                "choose a smaller --kill-at"
            )
        if self.records >= complete:
            raise RunnerError(
                f"the interrupted run had written all {complete} records before the kill landed; "
                "choose a smaller --kill-at"
            )


def _matches(line: str, kind: str, step: int, hold: bool) -> bool:
    parts = line.split()
    if hold:
        return len(parts) >= 3 and parts[0] == "hold" and parts[1] == kind and int(parts[2]) >= step
    return len(parts) >= 2 and parts[0] == kind and int(parts[1]) >= step


def first_difference(expected: bytes, actual: bytes) -> str | None:
    """None when identical, else the first differing record of two metrics files."""
    if expected == actual:
        return None
    for number, (want, got) in enumerate(zip_longest(expected.split(b"\n"), actual.split(b"\n")), start=1):
        if want != got:
            show = {None: "<missing>"}
            return (
                f"record {number} differs:\n"
                f"  uninterrupted: {show.get(want) or want.decode(errors='replace')}\n"  # type: ignore[arg-type]
                f"  resumed:       {show.get(got) or got.decode(errors='replace')}"  # type: ignore[arg-type]
            )
    return "the files differ"  # pragma: no cover - split lines cover every byte


@click.command("verify-resume")
@recipe_path
@recipe_options
@click.option(
    "--kill-at", "kill_at", type=click.IntRange(min=1), required=True, metavar="K", help="Kill at optimizer step K."
)
@click.option(
    "--during",
    type=click.Choice(["step", "val", "epoch"]),
    default="step",
    show_default=True,
    help="Kill after step K, in the first validation at or after K, or at the first epoch end at or after K.",
)
@click.option("--hold/--no-hold", default=False, help="Make the run wait at the kill point (an exact kill).")
@click.option(
    "--save-every", type=click.IntRange(min=1), default=1, show_default=True, help="Checkpoint every N steps."
)
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), help="Where the two runs go.")
@click.option("--keep", is_flag=True, help="Keep the work directory even when the runs are identical.")
@click.option(
    "--parallel/--sequential",
    default=False,
    help="Run the uninterrupted run alongside the interrupted one (faster with spare cores or memory).",
)
@click.option("--timeout", type=float, default=1800, show_default=True, help="Seconds allowed per run.")
@click.pass_context
def verify_resume_command(
    ctx: click.Context,
    recipe: str,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    kill_at: int,
    during: str,
    hold: bool,
    save_every: int,
    work_dir: Path | None,
    keep: bool,
    parallel: bool,
    timeout: float,
) -> None:
    """Train RECIPE, SIGKILL it at step K, resume, and compare with an uninterrupted run."""
    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    _, validated = state.load_recipe(recipe, overrides)
    if validated.checkpoint is not None and validated.checkpoint.name != "default":
        raise RunnerError(
            f"verify-resume drives the 'default' checkpointer; the recipe uses {validated.checkpoint.name!r}"
        )
    if not validated.run.deterministic:
        click.echo("warning: [run] deterministic = false; runs may differ even without an interruption", err=True)
    work = work_dir or Path(tempfile.mkdtemp(prefix="runner-verify-resume-"))
    work.mkdir(parents=True, exist_ok=True)
    base = [recipe, "--no-progress", *(f"-o{o}" for o in overrides)]
    for spec in getattr(state, "_local", []):
        base += ["-p", spec]
    checkpointing = ["-ocheckpoint.name=default", f"-ocheckpoint.every_n_steps={save_every}"]
    uninterrupted, interrupted = work / "uninterrupted", work / "interrupted"
    for directory in (uninterrupted, interrupted):
        if directory.exists():
            shutil.rmtree(directory)
    log_a, log_b = work / "uninterrupted.log", work / "interrupted.log"
    run_a = ["run", *base, "--run-dir", str(uninterrupted)]
    run_b = ["run", *base, *checkpointing, "--run-dir", str(interrupted)]

    click.echo(f"1/3 uninterrupted run -> {uninterrupted}")
    first = start(run_a, log_a)
    if not parallel:
        wait(first, run_a, log_a, timeout)
    try:
        click.echo(f"2/3 interrupted run -> {interrupted} (SIGKILL at {during} {kill_at})")
        event = run_and_kill(run_b, work / "progress.txt", during, kill_at, hold=hold, log=log_b, timeout=timeout)
        killed = Killed.read(interrupted)
        click.echo(f"    killed after observing: {event}")
        click.echo("3/3 resume")
        run_to_end([*run_b, "--resume"], log_b, timeout)
        if parallel:
            wait(first, run_a, log_a, timeout)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    resumed = [line for line in _tail(log_b, 200).splitlines() if line.startswith("checkpoint: resumed from")]
    if resumed:
        click.echo(f"    {resumed[-1].removeprefix('checkpoint: ')}")

    expected = (uninterrupted / METRICS_FILE).read_bytes()
    killed.check(expected.count(b"\n"))
    actual = (interrupted / METRICS_FILE).read_bytes()
    difference = first_difference(expected, actual)
    if difference is None:
        records = expected.count(b"\n")
        click.echo(f"identical: {records} records of {METRICS_FILE} match byte for byte")
        if not keep and work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        return
    click.echo(difference)
    click.echo(f"runs kept in {work}")
    ctx.exit(1)
