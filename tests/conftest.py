"""Shared helpers for the cross-package end-to-end tests.

Everything here drives the real ``runner`` console script in a subprocess, the way a
user does. Plugin distributions (the projects under ``tests/fixtures``, built and
installed with pip, and the small ones of ``misbehaving_dists.py``) go into per-session
directories; a test "installs" one by putting its directory on ``PYTHONPATH``
(``importlib.metadata`` then finds its ``dist-info`` and entry points) and "uninstalls"
it by leaving it off.

Test modules get the helpers as fixtures (``run_cli``, ``run_python``, ``installed``,
``repo``) rather than importing this module.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from misbehaving_dists import MISBEHAVING

from runner import testing
from runner.testing import CliResult, make_plugin_dist, run_cli_subprocess

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECIPES = REPO / "recipes"

#: Fixture distributions: their sources are test data, not tests of this suite.
collect_ignore_glob = ["fixtures/*"]

#: Environment variables that change which plugins load; tests set them explicitly.
_PLUGIN_ENV = ("PYTHONPATH", "RUNNER_DISABLE_PLUGINS", "RUNNER_PLUGINS")


@dataclass(frozen=True)
class PythonResult:
    """What one ``python`` invocation did (``runner`` invocations give runner.testing's CliResult)."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        """Everything, for assertion messages."""
        return (
            f"$ {' '.join(self.args)}\nexit status {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def cli_env(env_extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PLUGIN_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep installed fixture dirs and sources pristine
    env.update(env_extra or {})
    return env


def _run_cli(
    *args: str | os.PathLike[str],
    env_extra: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 300,
) -> CliResult:
    """Run ``runner ARGS...`` (default cwd: the repository root) in the clean test environment."""
    env: dict[str, str | None] = {name: None for name in _PLUGIN_ENV}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", **(env_extra or {})})
    return run_cli_subprocess(*args, env=env, cwd=cwd or REPO, timeout=timeout)


def _run_python(
    *args: str | os.PathLike[str],
    env_extra: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 300,
) -> PythonResult:
    """Run ``python ARGS...`` with the test interpreter, in the same clean environment as ``run_cli``."""
    argv = tuple(str(a) for a in args)
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd or REPO,
        env=cli_env(env_extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PythonResult(("python", *argv), done.returncode, done.stdout, done.stderr)


RunCli = Callable[..., CliResult]


@pytest.fixture(scope="session")
def run_cli() -> RunCli:
    """``run_cli(*args, env_extra=None, cwd=None, timeout=300) -> CliResult``: run ``runner ARGS...``.

    The plugin-selecting environment variables (PYTHONPATH, RUNNER_DISABLE_PLUGINS,
    RUNNER_PLUGINS) are cleared and then taken from ``env_extra`` only.
    """
    return _run_cli


@pytest.fixture(scope="session")
def run_python() -> Callable[..., PythonResult]:
    """Like ``run_cli`` for ``python ARGS...``."""
    return _run_python


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


class Installed:
    """Fixture distributions installed into their own directories, one per distribution."""

    def __init__(self, targets: Mapping[str, Path]) -> None:
        self.targets = dict(targets)

    def env(self, *dists: str, **extra: str) -> dict[str, str]:
        """Environment in which exactly ``dists`` (and the venv's own plugins) are installed."""
        return {"PYTHONPATH": os.pathsep.join(str(self.targets[d]) for d in dists), **extra}


@pytest.fixture(scope="session")
def pip_install() -> Callable[[Path, Path], Path]:
    """``pip_install(source, target)``: build and install a distribution into ``target``
    (runner.testing's). A fixture, since ``from conftest import`` is ambiguous when several
    test folders have a conftest."""
    return testing.pip_install


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The fixture distributions, each in its own directory, once per session: the projects
    under ``tests/fixtures/runner-*`` built and installed with pip, the small misbehaving
    ones of ``misbehaving_dists.py`` written straight to their directories."""
    sources = sorted(p for p in FIXTURES.glob("runner-*") if (p / "pyproject.toml").is_file())
    assert sources, f"no fixture distributions in {FIXTURES}"
    root = tmp_path_factory.mktemp("site")
    written = {name: make_plugin_dist(root / name, name, **spec).site for name, spec in MISBEHAVING.items()}
    with ThreadPoolExecutor(max_workers=len(sources)) as pool:
        futures = {src.name: pool.submit(testing.pip_install, src, root / src.name) for src in sources}
        try:
            return Installed({**written, **{name: future.result() for name, future in futures.items()}})
        except RuntimeError as exc:
            pytest.fail(f"installing a fixture distribution failed:\n{exc}")
