"""Helpers shared by the core tests (fixtures live in ``conftest.py``).

Everything runs against real plugins: ``fixtures/toy_plugin.py`` (a dataset, model, task,
optimizer and observing callbacks) and small plugin modules or fake installed
distributions written into ``tmp_path`` by the tests themselves.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import attrs
import pytest

from runner._contract.errors import RecipeError
from runner._contract.recipe import Recipe
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner.testing import runner_command

FIXTURES = Path(__file__).parent / "fixtures"
TOY_PLUGIN = FIXTURES / "toy_plugin.py"
TOY_RECIPE = FIXTURES / "toy.toml"
TOY = TOY_RECIPE.read_text(encoding="utf-8")
#: An allow-list naming no installed distribution: only the built-ins and ``-p`` plugins load.
HERMETIC_ENV = {"RUNNER_PLUGINS": "no-installed-plugin-is-called-this"}


def write(path: Path, text: str) -> Path:
    """Write dedented ``text`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def check_recipe(
    text: str, manager: PluginManager, tmp_path: Path, overrides: tuple[str, ...] = (), name: str = "recipe.toml"
) -> Recipe:
    """Validate recipe ``text`` (written to ``tmp_path/name``) against ``manager``'s registry."""
    path = write(tmp_path / name, text)
    return validate(read_recipe(path, overrides), manager.registry, manager.failures)


def recipe_problems(text: str, manager: PluginManager, tmp_path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    """The problem lines validating ``text`` reports (fails the test if it validates)."""
    with pytest.raises(RecipeError) as caught:
        check_recipe(text, manager, tmp_path, overrides)
    return [str(p) for p in caught.value.problems]


@attrs.frozen
class Trained:
    """A finished in-process run and what it wrote."""

    run_dir: Path
    result: Any
    records: list[dict[str, Any]]
    probe: dict[str, Any] | None

    def stage(self, stage: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["stage"] == stage]


@attrs.frozen
class FakeDist:
    """An installed-looking distribution (dist-info with entry points) on ``sys.path``."""

    site: Path
    dist: str
    version: str
    module: str


__all__ = ["runner_command"]  # runner.testing's, re-exported for the tests importing it from here
