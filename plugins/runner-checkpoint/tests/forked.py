"""Start ``runner ...`` as a real, separately killable process without paying for importing
torch every time: children fork from a multiprocessing forkserver that imported torch
and runner once. Each child is a fresh process (own memory, files, pid; it dies for
real on SIGKILL) that runs the CLI exactly as ``runner`` does, with ``fork`` as its own
start method so data-loader workers behave as in a normal run.

The forkserver starts lazily, once per test session. Tests that must prove a cold start
(``runner verify-resume``) use real ``runner`` subprocesses.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import signal
import sys
from pathlib import Path

_PRELOAD = [
    "torch",
    "torch._dynamo",
    "runner._engine.run",
    "runner._cli.main",
    "runner_checkpoint.checkpointer",
    "forked",
]
_context: multiprocessing.context.ForkServerContext | None = None


def _child(args: list[str], env: dict[str, str], log: str, cwd: str, new_group: bool) -> None:
    if new_group:
        os.setpgid(0, 0)  # its own process group, as a job under a scheduler
    multiprocessing.set_start_method("fork", force=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from runner._cli.main import main

    try:
        code = int(main(args) or 0)
    except SystemExit as exc:
        code = int(exc.code or 0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Forked:
    """A started run with the ``subprocess.Popen`` methods ``run_and_kill`` uses."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        self.process.join(timeout)
        code = self.process.exitcode
        if code is None:
            raise TimeoutError(f"run {self.process.pid} still running after {timeout}s")
        return code

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def kill(self) -> None:
        self.process.kill()


def launch(args: list[str], env: dict[str, str], log: Path, *, new_group: bool = False) -> Forked:
    """Start ``runner ARGS`` with exactly ``env`` as its environment, output appended to ``log``
    (``new_group``: in a process group of its own, which ``os.killpg(run.pid, ...)`` signals)."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    process = _context.Process(
        target=_child, args=(list(args), dict(env), str(log), os.getcwd(), new_group), daemon=False
    )
    process.start()
    return Forked(process)
