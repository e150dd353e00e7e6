"""Every distribution declares what its code imports, and imports what it declares.

Each ``import`` in ``core/src`` and ``plugins/*/src`` (read with ``ast``, nothing is
imported) must be the standard library, the distribution itself, or a distribution its
``pyproject.toml`` lists: in ``dependencies``, or in an optional-dependencies extra when
the import is guarded (inside a function or a ``try``) and the extra says what needs it.
Imports under ``if TYPE_CHECKING:`` are for type checkers only and are skipped. Every
runtime dependency must be imported somewhere (``cattrs`` was declared and never used).

Import names map to distributions through the installed metadata
(``importlib.metadata.packages_distributions``), so ``sklearn`` is scikit-learn.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [REPO / "core", *sorted(p for p in (REPO / "plugins").glob("runner-*") if p.is_dir())]
#: Declared but never imported by name, on purpose (the reason is the value).
IMPORTED_INDIRECTLY: dict[tuple[str, str], str] = {
    ("runner-tensorboard", "tensorboard"): "torch.utils.tensorboard imports it",
    ("runner-mlflow", "sqlalchemy"): "MLflow's SQL tracking store (the default sqlite:///mlflow.db) imports it",
    ("runner-mlflow", "alembic"): "MLflow's SQL tracking store creates and migrates its tables with it",
}
#: Imported but not declared, on purpose (the reason is the value).
PROVIDED_BY_THE_IMPORTER: dict[tuple[str, str], str] = {
    ("runner-core", "pytest"): "runner.testing is a pytest plugin (pytest11 entry point): only pytest imports it",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
    assert match, line
    return canonical(match.group(1))


def declared(project: dict[str, object]) -> tuple[set[str], set[str]]:
    """(runtime dependencies, names in any optional-dependencies extra)."""
    runtime = {requirement_name(line) for line in project.get("dependencies", [])}  # type: ignore[attr-defined]
    extras = project.get("optional-dependencies", {})
    optional = {requirement_name(line) for lines in extras.values() for line in lines}  # type: ignore[attr-defined]
    return runtime, optional


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If) and isinstance(test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(test)
    )


def imports(tree: ast.AST) -> Iterator[tuple[str, bool]]:
    """(top-level module, guarded) for each absolute import; guarded: inside a function or try."""

    def walk(node: ast.AST, guarded: bool) -> Iterator[tuple[str, bool]]:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                yield from (item for orelse in getattr(child, "orelse", []) for item in walk(orelse, guarded))
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name.partition(".")[0], guarded) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield child.module.partition(".")[0], guarded
            inner = guarded or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Try)
            yield from walk(child, inner)

    yield from walk(tree, False)


def own_modules(dist: Path) -> set[str]:
    return {p.name for p in (dist / "src").iterdir() if p.is_dir() or p.suffix == ".py"}


def module_to_distributions() -> dict[str, set[str]]:
    """Top-level module -> distributions providing it: installed metadata, plus this
    workspace's distributions (editable installs do not list their modules)."""
    mapping: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        mapping.setdefault(module, set()).update(canonical(d) for d in dists)
    for dist in DISTRIBUTIONS:
        name = tomllib.loads((dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
        for module in own_modules(dist):
            mapping.setdefault(module.removesuffix(".py"), set()).add(canonical(name))
    return mapping


@pytest.fixture(scope="module")
def owners() -> dict[str, set[str]]:
    return module_to_distributions()


def audit(dist: Path, owners: dict[str, set[str]], root: Path = REPO) -> tuple[list[str], set[str]]:
    """(problems, the declared distributions the code imports); paths relative to ``root``."""
    project = tomllib.loads((dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = canonical(project["name"])
    runtime, optional = declared(project)
    own = own_modules(dist)
    problems, used = [], set()
    for path in sorted((dist / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for module, guarded in imports(tree):
            if module in sys.stdlib_module_names or module in own or module == "__future__":
                continue
            if (name, module) in PROVIDED_BY_THE_IMPORTER:
                continue
            # A requirement whose marker excludes this interpreter (tomli on 3.11) is not installed.
            candidates = owners.get(module, set()) or ({canonical(module)} & runtime)
            if not candidates:
                problems.append(
                    f"{path.relative_to(root)}: imports {module!r}, which no installed distribution provides"
                )
                continue
            if candidates & runtime:
                used |= candidates & runtime
            elif guarded and candidates & optional:
                used |= candidates & optional
            elif name not in candidates:
                where = "dependencies" if not guarded else "dependencies (or an extra)"
                problems.append(
                    f"{path.relative_to(root)}: imports {module!r} ({' or '.join(sorted(candidates))}), "
                    f"not in {project['name']}'s {where}"
                )
    return problems, used


@pytest.fixture(scope="module")
def audits(owners: dict[str, set[str]]) -> dict[Path, tuple[list[str], set[str]]]:
    return {dist: audit(dist, owners) for dist in DISTRIBUTIONS}


@pytest.mark.slow  # the audit of every distribution's imports takes seconds
@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda p: p.name)
def test_every_import_is_declared(dist: Path, audits: dict[Path, tuple[list[str], set[str]]]) -> None:
    problems, _ = audits[dist]
    assert problems == []


@pytest.mark.slow  # the same audit
@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda p: p.name)
def test_every_runtime_dependency_is_imported(dist: Path, audits: dict[Path, tuple[list[str], set[str]]]) -> None:
    project = tomllib.loads((dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime, _ = declared(project)
    _, used = audits[dist]
    name = canonical(project["name"])
    unused = sorted(d for d in runtime - used if (name, d) not in IMPORTED_INDIRECTLY)
    assert unused == [], f"{project['name']} declares {unused} but never imports them"


def test_the_audit_catches_an_undeclared_import(tmp_path: Path, owners: dict[str, set[str]]) -> None:
    (tmp_path / "src" / "runner_fake").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "runner-fake"\ndependencies = ["attrs", "cattrs"]\n'
        '[project.optional-dependencies]\nplot = ["matplotlib"]\n',
        encoding="utf-8",
    )
    (tmp_path / "src" / "runner_fake" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nimport attrs\nimport click\nimport matplotlib\n"
        "if TYPE_CHECKING:\n    import numpy\n"
        "def plot():\n    import matplotlib.pyplot\n",
        encoding="utf-8",
    )
    problems, used = audit(tmp_path, owners, root=tmp_path)
    assert problems == [
        "src/runner_fake/__init__.py: imports 'click' (click), not in runner-fake's dependencies",
        "src/runner_fake/__init__.py: imports 'matplotlib' (matplotlib), not in runner-fake's dependencies",
    ]
    assert used == {"attrs", "matplotlib"}  # cattrs is declared and unused


def lower_bounds(lines: list[str]) -> dict[str, str]:
    """``{"numpy": "1.24"}`` for each ``name>=version`` requirement (markers ignored)."""
    bounds = {}
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*>=\s*([0-9][0-9a-z.]*)", line)
        if match:
            bounds[canonical(match.group(1))] = match.group(2)
    return bounds


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*==\s*([0-9][0-9a-z.+]*)", line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def test_constraints_min_pins_each_core_dependency_at_its_lower_bound() -> None:
    """``make test-min`` tests the bounds runner-core declares, not some other versions."""
    project = tomllib.loads((REPO / "core" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds = lower_bounds(project["dependencies"])
    minimum, dev = pins(REPO / "constraints-min.txt"), pins(REPO / "constraints.txt")
    assert set(minimum) == set(bounds), "constraints-min.txt must pin exactly runner-core's dependencies"
    for name, bound in bounds.items():
        if name == "torch":  # one torch build for every environment: the dev pin
            assert minimum[name] == dev[name]
        else:
            numbers = [tuple(int(n) for n in v.split(".")) for v in (minimum[name], bound)]
            width = max(len(n) for n in numbers)
            pinned, needed = (n + (0,) * (width - len(n)) for n in numbers)
            assert pinned == needed, f"{name}: constraints-min.txt has {minimum[name]}, runner-core needs >={bound}"
