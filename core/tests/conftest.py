"""Fixtures for the core tests (helpers are in ``core_helpers.py``).

Command-line tests run the installed ``runner`` script in a subprocess with an allow-list
(``RUNNER_PLUGINS``) that names no installed distribution, so plugins other engineers
install into the same environment never change what the core tests see.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from core_helpers import (
    HERMETIC_ENV,
    TOY,
    TOY_PLUGIN,
    TOY_RECIPE,
    FakeDist,
    Trained,
    check_recipe,
    write,
)

from runner._plugins.manager import PluginManager
from runner.testing import CliResult, make_plugin_dist, run_cli_subprocess


@pytest.fixture
def toy_manager() -> PluginManager:
    """Built-ins plus the toy plugin; installed plugins are not looked at."""
    return PluginManager(local_plugins=[str(TOY_PLUGIN)], use_entry_points=False).load()


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    """A directory holding ``toy.toml`` and the ``toy_plugin.py`` it names."""
    shutil.copy(TOY_PLUGIN, tmp_path / TOY_PLUGIN.name)
    shutil.copy(TOY_RECIPE, tmp_path / TOY_RECIPE.name)
    return tmp_path


@pytest.fixture
def write_plugin(tmp_path: Path) -> Callable[[str, str], str]:
    """``write_plugin("name", source)`` writes ``tmp_path/plugins/name.py``; returns its path."""

    def make(name: str, source: str) -> str:
        return str(write(tmp_path / "plugins" / f"{name}.py", source))

    return make


@pytest.fixture
def train(tmp_path: Path, toy_manager: PluginManager) -> Callable[..., Trained]:
    """``train(*overrides, text=TOY)`` validates and runs a toy recipe in-process."""
    from runner._engine.run import execute

    count = 0

    def run(*overrides: str, text: str = TOY) -> Trained:
        nonlocal count
        count += 1
        recipe = check_recipe(text, toy_manager, tmp_path, overrides, name=f"recipe-{count}.toml")
        run_dir = tmp_path / f"run-{count}"
        result = execute(recipe, toy_manager, run_dir, show_progress=False)
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        probe_file = run_dir / "probe.json"
        probe = json.loads(probe_file.read_text(encoding="utf-8")) if probe_file.exists() else None
        return Trained(run_dir, result, [json.loads(line) for line in lines], probe)

    return run


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliResult]:
    """``cli(*args, cwd=tmp_path, env={})`` runs ``runner`` hermetically in a subprocess."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> CliResult:
        return run_cli_subprocess(*args, cwd=cwd or tmp_path, env={**HERMETIC_ENV, **(env or {})}, timeout=120)

    return run


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeDist]]:
    """``fake_dists(dist, module_source, version="1.0", entry_point=None)`` installs a
    distribution whose ``runner`` entry point is a package with ``module_source`` as its
    ``__init__``. importlib.metadata finds it exactly like a pip-installed plugin.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(dist: str, source: str, version: str = "1.0", entry_point: str | None = None) -> FakeDist:
        module = f"{dist.replace('-', '_')}_{tmp_path.name.replace('-', '_')}"
        files = {f"{module}/__init__.py": source}
        make_plugin_dist(site, dist, files, entry_points={entry_point or dist: module}, version=version)
        modules.append(module)
        return FakeDist(site, dist, version, module)

    yield make
    for module in modules:
        sys.modules.pop(module, None)
