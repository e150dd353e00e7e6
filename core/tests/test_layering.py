"""The house: the contract sits at the bottom, imports run downwards only, and no module
imports itself back through another (TYPE_CHECKING and function-level imports count)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Floors from the ground up; a module may import its own floor or lower ones only.
#: The first prefix that matches a module decides its floor.
FLOORS: list[tuple[str, ...]] = [
    ("runner._version", "runner._contract"),  # the contract: imports nothing of runner's but itself
    ("runner._compat",),  # workarounds for third-party packages: imports nothing of runner's
    ("runner.hookspecs",),
    # component schemas and the registry
    (
        "runner._schema.fields",
        "runner._schema.check",
        "runner._schema.crosscheck",
        "runner._samplers",  # the sampler protocol (torch-free), the sampler classes and built-in components
        "runner._plugins.discovery",
        "runner._plugins.catalog",
        "runner._plugins.registry",
    ),
    ("runner._plugins",),  # the manager and the typed hook facade
    ("runner._recipe",),
    ("runner._schema",),  # the JSON schema export, derived from validated recipes
    ("runner._processing",),
    ("runner._data",),
    ("runner._engine",),
    ("runner._builtin",),
    ("runner._inference",),  # after training: predict, export, runner.fit/load
    ("runner._sweep",),  # sweeps: drive many `runner run` processes and read their run directories
    ("runner._cli",),  # every command, front end and back end (runner._cli.tools)
    ("runner._testkit",),  # what runner.testing exports
    ("runner.testing", "runner.__main__", "runner"),  # the public face
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((SRC / "runner").rglob("*.py"))}


def floor_of(module: str) -> int:
    for index, prefixes in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is on no floor: add it to FLOORS")


@functools.cache
def imports_of(module: str) -> frozenset[str]:
    """runner modules ``module`` imports anywhere in its file (resolved to modules)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "runner"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "runner":
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    found.discard(module)
    return frozenset(found)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_downwards(module: str) -> None:
    here = floor_of(module)
    upward = sorted(t for t in imports_of(module) if floor_of(t) > here)
    assert not upward, f"{module} (floor {here}) imports from higher floors: {upward}"


def test_the_contract_imports_nothing_but_itself() -> None:
    for module in MODULES:
        if module.startswith("runner._contract"):
            foreign = sorted(t for t in imports_of(module) if not t.startswith("runner._contract"))
            assert not foreign, f"{module} imports {foreign}"


def test_no_import_cycles() -> None:
    graph = {module: imports_of(module) & MODULES.keys() for module in MODULES}
    # runner/__init__ is imported by every `import runner.x`; the face re-exports lazily.
    graph["runner"] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_commands_live_with_the_cli() -> None:
    """Every command, its click front end and its back end (``runner._cli.tools``), is in
    ``runner._cli``; the rest of the core neither defines commands nor uses their back ends."""
    from runner import _builtin

    for module, path in MODULES.items():
        if module.startswith("runner._cli"):
            continue
        assert "@click." not in path.read_text(encoding="utf-8"), f"{module} defines a command: move it to runner._cli"
        backends = sorted(t for t in imports_of(module) if t.startswith("runner._cli.tools"))
        assert not backends, f"{module} uses command back ends {backends}: move what it needs below runner._cli"
    registered: list[str] = []
    _builtin.register_commands(register=lambda name, ref, **_: registered.append(ref))
    assert registered and all(ref.startswith("runner._cli.") for ref in registered), registered
