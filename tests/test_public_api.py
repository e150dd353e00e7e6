"""The contract is the product: bundled plugins, the scaffold, the tutorial and the docs'
Python use exactly the public API a third party gets (``runner``, ``runner.hookspecs``,
``runner.testing``), and that API is documented in docs/api.md."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import runner
from runner._cli.tools.scaffold import PluginNames, render_plugin

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = {"runner", "runner.hookspecs", "runner.testing"}
FENCE = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def sources() -> Iterator[tuple[str, str]]:
    """``(where, python source)`` of everything that must stay on the public API."""
    for path in sorted(ROOT.glob("plugins/runner-*/src/**/*.py")):
        yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    for path in sorted((ROOT / "tests/fixtures/runner-tutorial").rglob("*.py")):
        if "build" not in path.parts:
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    for name, text in sorted(render_plugin(PluginNames.from_name("example")).items()):
        if name.endswith(".py"):
            yield f"scaffold:{name}", text
    for path in sorted(ROOT.glob("docs/**/*.md")):
        text = path.read_text(encoding="utf-8")
        for number, match in enumerate(FENCE.finditer(text)):
            line = text[: match.start()].count("\n") + 1
            yield f"{path.relative_to(ROOT)}:{line} (block {number})", match.group(1)


SOURCES = dict(sources())


def private_uses(source: str) -> list[str]:
    """Imports of runner modules or names outside the public API, and private references."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "runner" and alias.name not in PUBLIC_MODULES:
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "runner":
            if node.module not in PUBLIC_MODULES:
                problems.append(f"line {node.lineno}: from {node.module} import ...")
            elif node.module == "runner":
                for alias in node.names:
                    if alias.name not in runner.__all__ and f"runner.{alias.name}" not in PUBLIC_MODULES:
                        problems.append(f"line {node.lineno}: from runner import {alias.name} (not public)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and re.search(r"\brunner\._", node.value):
            problems.append(f"line {node.lineno}: refers to a private module in {node.value!r}")
        elif isinstance(node, ast.Attribute) and node.attr == "extras" and isinstance(node.ctx, ast.Load):
            problems.append(f"line {node.lineno}: reads run.extras (use the run services)")
    return problems


@pytest.mark.parametrize("where", sorted(SOURCES))
def test_uses_only_the_public_api(where: str) -> None:
    assert private_uses(SOURCES[where]) == [], f"{where} reaches past runner's public API"


def test_the_sources_were_found() -> None:
    assert sum(w.startswith("plugins/") for w in SOURCES) > 50
    assert any(w.startswith("scaffold:") for w in SOURCES)
    assert any(w.startswith("docs/") for w in SOURCES)


def test_the_check_catches_private_imports() -> None:
    assert private_uses("from runner._engine import state")
    assert private_uses("import runner._data.loader")
    assert private_uses("from runner import Trainer")
    assert private_uses('register("x", "runner._builtin.single:SingleDevice")')
    assert private_uses("run.extras['trainer']")
    assert not private_uses("from runner import Task, hookimpl\nfrom runner.testing import RunnerTester")


def test_no_bundled_code_uses_run_extras() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*ROOT.glob("plugins/runner-*/src/**/*.py"), *ROOT.glob("core/src/**/*.py")]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "extras[" in line or "extras.get(" in line
    ]
    assert offenders == []


@pytest.mark.parametrize("name", runner.__all__)
def test_every_public_name_resolves_and_is_documented(name: str) -> None:
    assert getattr(runner, name) is not None
    if name != "__version__":
        assert re.search(rf"\b{re.escape(name)}\b", (ROOT / "docs/api.md").read_text(encoding="utf-8")), (
            f"runner.{name} is public but docs/api.md does not document it"
        )


def test_public_modules_import() -> None:
    for module in PUBLIC_MODULES:
        importlib.import_module(module)


def test_test_module_names_are_unique() -> None:
    """pytest imports test modules by basename (rootdir mode): two with one name break collection."""
    names = [
        path.name
        for path in [
            *ROOT.glob("core/tests/test_*.py"),
            *ROOT.glob("plugins/*/tests/test_*.py"),
            *ROOT.glob("tests/test_*.py"),
        ]
    ]
    assert sorted({n for n in names if names.count(n) > 1}) == []
