"""Run the ``runner`` command from a test: in-process (click's ``CliRunner``) or in a subprocess.

Both return a :class:`CliResult` (exit code, stdout, stderr) and go through the same entry
point as the console script, so user errors exit 2 with ``error: ...`` lines exactly as a
user sees them. In-process is fast and shares the test's ``sys.path`` (plugins made with
``runner_tester.plugin_dist`` are visible); a subprocess is what a user runs, and the only
choice for commands that must not touch the test process (signals, ``sys.modules``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

#: What ``plugins=()`` sets ``RUNNER_PLUGINS`` to: an allow-list no installed plugin matches.
NO_INSTALLED_PLUGINS = "runner-testing-allows-no-installed-plugin"

#: Environment values: a string sets the variable, None removes it.
Env = Mapping[str, "str | None"]


class _Outcome(NamedTuple):
    exit_code: int
    stdout: str
    stderr: str


class CliResult(_Outcome):
    """What one ``runner`` invocation did: a named tuple ``(exit_code, stdout, stderr)``
    (so ``code, out, err = result`` and ``result == (0, "...", "")`` work), plus the
    arguments it ran with in :attr:`args`."""

    args: tuple[str, ...]

    def __new__(cls, args: tuple[str, ...], exit_code: int, stdout: str, stderr: str) -> CliResult:
        result = super().__new__(cls, exit_code, stdout, stderr)
        result.args = args
        return result

    @property
    def returncode(self) -> int:
        """:attr:`exit_code`, named as :class:`subprocess.CompletedProcess` names it."""
        return self.exit_code

    @property
    def error_lines(self) -> list[str]:
        """The ``error: ...`` lines the CLI prints for user errors, without the prefix."""
        return [line.removeprefix("error: ") for line in self.stderr.splitlines() if line.startswith("error: ")]

    def __str__(self) -> str:
        """Everything, for assertion messages: ``assert result.exit_code == 0, result``."""
        head = f"$ runner {' '.join(self.args)}\nexit code {self.exit_code}"
        return f"{head}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def _environment(env: Env | None, plugins: Iterable[str] | None) -> dict[str, str | None]:
    changes: dict[str, str | None] = dict(env or {})
    if plugins is not None:
        chosen = ",".join(plugins)
        changes["RUNNER_PLUGINS"] = chosen or NO_INSTALLED_PLUGINS
    return changes


@contextlib.contextmanager
def _working_directory(path: str | os.PathLike[str] | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _cli_runner() -> Any:
    from click.testing import CliRunner

    # click < 8.2 mixes stderr into stdout unless told not to; later versions keep both.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg,unused-ignore]
    return CliRunner()


def _exit_code(value: object) -> int:
    """The exit status ``sys.exit(value)`` gives (the console script exits with main's result)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    sys.stderr.write(f"{value}\n")
    return 1


def run_cli(
    *args: str | os.PathLike[str],
    env: Env | None = None,
    cwd: str | os.PathLike[str] | None = None,
    plugins: Iterable[str] | None = None,
    input: str | None = None,
) -> CliResult:
    """Run ``runner ARGS...`` in this process and capture what it prints.

    ``env`` sets (or, with None, removes) environment variables for the call; ``cwd`` is
    the working directory during the call; ``plugins`` is the allow-list of installed
    plugins that may load (``RUNNER_PLUGINS``; ``()``: none, only the core's built-ins and
    ``-p``/recipe plugins; None: as the environment says). Exit codes are the console
    script's: 0, 2 for user errors, 130 when interrupted.
    """
    from runner._cli.main import main

    argv = [os.fspath(a) for a in args]
    runner = _cli_runner()
    with _working_directory(cwd), runner.isolation(input=input, env=_environment(env, plugins)) as streams:
        # click < 8.2 yields (stdout, stderr), later versions (stdout, stderr, both)
        try:
            code = _exit_code(main(argv))
        except SystemExit as exc:
            code = _exit_code(exc.code)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout, stderr = streams[0].getvalue(), streams[1].getvalue()
    return CliResult(tuple(argv), code, _text(stdout), _text(stderr))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def runner_command() -> list[str]:
    """The command line that runs ``runner``: the console script next to the running
    interpreter (``python -m runner`` if there is none). For tests that need a
    :class:`subprocess.Popen` (to signal or stream it): ``Popen([*runner_command(), "run", ...])``."""
    script = shutil.which("runner", path=str(Path(sys.executable).parent))
    return [script] if script is not None else [sys.executable, "-m", "runner"]


def run_cli_subprocess(
    *args: str | os.PathLike[str],
    env: Env | None = None,
    cwd: str | os.PathLike[str] | None = None,
    plugins: Iterable[str] | None = None,
    input: str | None = None,
    timeout: float = 300,
) -> CliResult:
    """Run ``runner ARGS...`` in a fresh process, as a user does (see :func:`run_cli` for
    ``env``, ``cwd`` and ``plugins``); the environment is this process's plus ``env``.

    The process runs in its own session; past ``timeout`` seconds its whole process group
    (workers it started included) is killed and :class:`subprocess.TimeoutExpired` raised.
    """
    argv = [os.fspath(a) for a in args]
    environment = dict(os.environ)
    for name, value in _environment(env, plugins).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    # Its own session: on a timeout the whole process group (workers included) is killed.
    process = subprocess.Popen(
        [*runner_command(), *argv],
        cwd=cwd,
        env=environment,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise subprocess.TimeoutExpired(process.args, timeout, stdout, stderr) from None
    return CliResult(tuple(argv), process.returncode, stdout, stderr)
