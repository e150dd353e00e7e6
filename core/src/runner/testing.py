"""A pytest plugin for plugin authors (loaded automatically through the ``pytest11`` entry point).

Fixture ``runner_tester`` gives you:

- ``plugin_manager(*plugins)``: a fresh plugin manager with only the built-ins and your
  plugin modules (no other installed plugin interferes);
- ``run(recipe, *plugins, max_steps=3)``: validate and train a recipe for a few steps,
  returning the run result and the parsed ``metrics.jsonl`` records;
- ``check_components(plugin, examples=...)``: the conformance check: every component your
  plugin registers has a readable schema, its defaults validate, it builds, and what it
  builds implements its kind's interface (``runner.Sampler``, ``runner.Logger``, ...).

- ``plugin_dist(name, files)``: a throwaway plugin distribution made from a dict of
  files, installed for this test (and for ``cli_subprocess``);
- ``cli(*args)`` / ``cli_subprocess(*args)``: run the ``runner`` command in-process or in a
  fresh process, returning a :class:`CliResult` (exit code, stdout, stderr).

The same helpers work without the fixture: :func:`make_plugin_dist`, :func:`pip_install`,
:func:`run_cli`, :func:`run_cli_subprocess` (and :func:`runner_command`, for a ``Popen``),
and :func:`assert_entry_module_torch_free`, which checks in a fresh interpreter that a
plugin's entry module imports no torch.

For tests that start processes (several ranks, servers, runs killed on purpose), the
``runner_leftovers`` fixture, or the ``no_leftovers(tmp_path)`` context manager, fails
the test when a process it started is still running afterwards, or a new ``/dev/shm``
entry is left behind.

Example::

    import my_plugin
    from runner.testing import assert_entry_module_torch_free

    def test_entry_module_is_torch_free():
        assert_entry_module_torch_free("my_plugin.plugin")

    def test_conformance(runner_tester):
        assert runner_tester.check_components(my_plugin) == []

    def test_recipe_runs(runner_tester):
        outcome = runner_tester.run("recipes/mine.toml", my_plugin, max_steps=5)
        assert outcome.records[-1]["stage"] == "val"

    def test_recipe_check(runner_tester):
        result = runner_tester.cli("recipe", "check", "recipes/mine.toml")
        assert result.exit_code == 0, result
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from runner._contract.context import BuildContext
from runner._contract.protocols import protocol_problems
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._plugins.registry import Component, Registry
from runner._schema.check import check_table
from runner._testkit.cli import CliResult, Env, run_cli, run_cli_subprocess, runner_command
from runner._testkit.dists import PluginDist, make_plugin_dist, pip_install
from runner._testkit.leftovers import Leftovers, no_leftovers
from runner._testkit.torchfree import assert_entry_module_torch_free

if TYPE_CHECKING:
    from runner._contract.recipe import Recipe
    from runner._engine.run import RunResult

#: Example parameters for components with required parameters: ``{(kind, name): {...}}``.
Examples = Mapping[tuple[str, str], Mapping[str, Any]]


@attrs.frozen
class RunOutcome:
    """What :meth:`RunnerTester.run` returns."""

    result: RunResult
    records: list[dict[str, Any]]
    run_dir: Path
    recipe: Recipe


def _info_for(plugin: object) -> PluginInfo:
    name = getattr(plugin, "__name__", type(plugin).__name__)
    return PluginInfo(name=name, dist=name, version="test")


class RunnerTester:
    """Helpers behind the ``runner_tester`` fixture; ``tmp_path`` holds run directories."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._runs = 0
        self._dists: list[PluginDist] = []

    # -- plugin distributions and the command line --------------------------------------

    def plugin_dist(
        self,
        name: str,
        files: Mapping[str, str],
        *,
        entry_points: Mapping[str, str] | None = None,
        version: str = "0.1.0",
        requires: Iterable[str] = (),
        pip: bool = False,
    ) -> PluginDist:
        """A throwaway plugin distribution, installed for the rest of this test.

        See :func:`make_plugin_dist` for the arguments. Its directory goes first on
        ``sys.path`` (so ``PluginManager``/``cli`` with installed plugins find it) and on the
        ``PYTHONPATH`` of :meth:`cli_subprocess`; both, and the modules imported from it,
        are removed when the test ends. Each distribution gets its own directory.
        """
        site = self.tmp_path / "dists" / f"{name}-{len(self._dists)}"
        dist = make_plugin_dist(
            site, name, files, entry_points=entry_points, version=version, requires=requires, pip=pip
        )
        sys.path.insert(0, str(dist.site))
        importlib.invalidate_caches()
        self._dists.append(dist)
        return dist

    def dists_env(self) -> dict[str, str]:
        """Environment variables under which a subprocess has this test's distributions installed."""
        paths = [str(d.site) for d in reversed(self._dists)]
        return {"PYTHONPATH": os.pathsep.join([*paths, *filter(None, [os.environ.get("PYTHONPATH")])])}

    def cli(
        self,
        *args: str | os.PathLike[str],
        env: Env | None = None,
        cwd: str | os.PathLike[str] | None = None,
        plugins: Iterable[str] | None = None,
        input: str | None = None,
    ) -> CliResult:
        """``runner ARGS...`` in this process (see :func:`run_cli`)."""
        return run_cli(*args, env=env, cwd=cwd, plugins=plugins, input=input)

    def cli_subprocess(
        self,
        *args: str | os.PathLike[str],
        env: Env | None = None,
        cwd: str | os.PathLike[str] | None = None,
        plugins: Iterable[str] | None = None,
        input: str | None = None,
        timeout: float = 300,
    ) -> CliResult:
        """``runner ARGS...`` in a fresh process with this test's distributions installed
        (see :func:`run_cli_subprocess`)."""
        environment: dict[str, str | None] = {**(self.dists_env() if self._dists else {}), **(env or {})}
        return run_cli_subprocess(*args, env=environment, cwd=cwd, plugins=plugins, input=input, timeout=timeout)

    def close(self) -> None:
        """Uninstall this test's distributions: off ``sys.path``, their modules forgotten."""
        sites = [str(d.site) for d in self._dists]
        sys.path[:] = [p for p in sys.path if p not in sites]
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None) or ""
            if any(origin.startswith(site + os.sep) for site in sites):
                del sys.modules[name]
        importlib.invalidate_caches()
        self._dists.clear()

    # -- plugins, recipes and runs -------------------------------------------------------

    def plugin_manager(self, *plugins: object | str, entry_points: bool = False) -> PluginManager:
        """Built-ins plus ``plugins`` (modules, objects, module names or ``.py`` paths) only."""
        local = [p for p in plugins if isinstance(p, str)]
        manager = PluginManager(local_plugins=local, use_entry_points=entry_points).load()
        for plugin in plugins:
            if not isinstance(plugin, str):
                manager.add(plugin, _info_for(plugin))
        return manager

    def recipe(
        self, recipe: str | Path, *plugins: object | str, overrides: tuple[str, ...] = ()
    ) -> tuple[Recipe, PluginManager]:
        """Validate a recipe (a path, or TOML text: any string with a newline) with only ``plugins``."""
        from runner._recipe.source import read_recipe
        from runner._recipe.validate import validate

        if isinstance(recipe, str) and "\n" in recipe:
            path = self.tmp_path / f"recipe-{self._runs}.toml"
            path.write_text(recipe, encoding="utf-8")
        else:
            path = Path(recipe)
        manager = self.plugin_manager(*plugins)
        return validate(read_recipe(path, overrides, collect=True), manager.registry, manager.failures), manager

    def run(
        self,
        recipe: str | Path,
        *plugins: object | str,
        max_steps: int | None = 3,
        overrides: tuple[str, ...] = (),
    ) -> RunOutcome:
        """Train ``recipe`` for ``max_steps`` steps (None: as written) in a fresh run directory."""
        from runner._engine.run import execute

        extra = (f"run.max_steps={max_steps}",) if max_steps is not None else ()
        validated, manager = self.recipe(recipe, *plugins, overrides=(*overrides, *extra))
        self._runs += 1
        run_dir = self.tmp_path / f"run-{self._runs}"
        result = execute(validated, manager, run_dir, show_progress=False)
        lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        return RunOutcome(result, [json.loads(line) for line in lines], run_dir, validated)

    def check_components(
        self,
        plugin: object | str,
        examples: Examples | None = None,
        *,
        train_dataset: Any = None,
        with_plugins: tuple[object | str, ...] = (),
    ) -> list[str]:
        """Conformance problems of every component ``plugin`` registers (empty when fine).

        Datasets are built first; the first one (or ``train_dataset``) is what models see
        as ``ctx.train_dataset``, so they can read sizes from its ``meta``. ``with_plugins``
        load alongside (not checked): e.g. one registering the functions examples name. The
        example parameters go through the same checks as a recipe's, ``@runner.check`` rules
        included. A component registered in the deprecated form (a factory with
        ``params=``) gets a ``DeprecationWarning`` saying how to declare it instead.
        """
        manager = self.plugin_manager(plugin, *with_plugins)
        if isinstance(plugin, str):  # named like runner names -p plugins
            name = Path(plugin).stem if plugin.endswith(".py") else plugin
        else:
            name = _info_for(plugin).name
        problems: list[str] = []
        components = manager.registry.by_plugin(name)
        if not components:
            problems.append(f"plugin {name} registers no components")
        ctx = BuildContext(recipe=None, seed=0, run_dir=self.tmp_path, train_dataset=train_dataset)  # type: ignore[arg-type]
        for component in sorted(components, key=lambda c: c.kind != "dataset"):
            _warn_if_deprecated(component)
            example = dict((examples or {}).get((component.kind, component.name), {}))
            problems += _check_component(component, example, ctx, manager.registry)
        return problems


def _warn_if_deprecated(component: Component) -> None:
    try:
        message = component.deprecation
    except Exception:
        return  # an import failure is reported with the schema
    if message:
        # stacklevel: the plugin author's test calling check_components
        warnings.warn(message, DeprecationWarning, stacklevel=3)


def _check_component(component: Component, example: dict[str, Any], ctx: BuildContext, registry: Registry) -> list[str]:
    label = f"{component.kind} {component.name!r}"
    if component.kind == "function":  # called by other components, not built from a table
        try:
            registry.function(component.name)
        except Exception as exc:
            return [f"{label}: {type(exc).__name__}: {exc}"]
        return []
    try:
        schema = component.schema
    except Exception as exc:
        return [f"{label}: cannot read its parameter schema: {type(exc).__name__}: {exc}"]
    params, issues = check_table(example, schema.fields, open_table=schema.open)
    try:
        issues += component.check_params(params, invalid={path[0] for path, _ in issues if path})
    except Exception as exc:
        return [f"{label}: {exc}"]
    if issues:
        missing = [str(path[0]) for path, message in issues if message.startswith("missing required")]
        if missing:
            return [f"{label}: required parameters {missing} need example values (examples={{(kind, name): ...}})"]
        shown = "; ".join(f"{'.'.join(map(str, path))}: {message}" if path else message for path, message in issues)
        return [f"{label}: example parameters invalid: {shown}"]
    try:
        built = _build(component, params, ctx, registry)
        if component.kind == "dataset" and ctx.train_dataset is None:
            ctx.train_dataset = built
    except Exception as exc:
        return [f"{label}: failed to build with {params}: {type(exc).__name__}: {exc}"]
    return [f"{label} {problem}" for problem in protocol_problems(component.kind, built)]


def _build(component: Component, params: dict[str, Any], ctx: BuildContext, registry: Registry) -> Any:
    """Build ``component`` with stand-in runtime arguments for its kind."""
    import torch

    from runner._data.build import dataset_builder

    runtime: dict[str, Any] = {"ctx": ctx, "seed": 0, "run_dir": ctx.run_dir, "registry": registry}
    if component.kind == "dataset":
        runtime["build_dataset"] = dataset_builder(registry, ctx, f"dataset {component.name!r}")
    if component.kind == "sampler":
        runtime["dataset"] = list(range(10))
    elif component.kind in ("optimizer", "scheduler"):
        model = torch.nn.Linear(2, 2)
        runtime["model"] = model
        runtime["optimizer"] = torch.optim.SGD(model.parameters(), lr=0.1)
        runtime["total_steps"] = 10
        runtime["steps_per_epoch"] = 5
    built = component.build(params, **runtime)
    if component.kind == "dataset" and isinstance(built, torch.utils.data.IterableDataset):
        if next(iter(built), None) is None:
            raise ValueError("dataset yields nothing")
    elif component.kind == "dataset" and hasattr(built, "__getitem__") and hasattr(built, "__len__"):
        if len(built) == 0:
            raise ValueError("dataset is empty")
        _ = built[0]
    return built


@pytest.fixture
def runner_tester(tmp_path: Path) -> Iterator[RunnerTester]:
    """Fresh plugin managers, few-step recipe runs, component conformance checks, throwaway
    plugin distributions and the ``runner`` command (see :class:`RunnerTester`)."""
    tester = RunnerTester(tmp_path)
    try:
        yield tester
    finally:
        tester.close()


@pytest.fixture
def runner_leftovers(tmp_path: Path) -> Iterator[Leftovers]:
    """Fails the test when it leaves a process or a ``/dev/shm`` entry behind: see
    :func:`no_leftovers` (processes whose command line mentions ``tmp_path`` count)."""
    with no_leftovers(tmp_path) as check:
        yield check


__all__ = [
    "CliResult",
    "Examples",
    "Leftovers",
    "PluginDist",
    "RunOutcome",
    "RunnerTester",
    "assert_entry_module_torch_free",
    "make_plugin_dist",
    "no_leftovers",
    "pip_install",
    "run_cli",
    "run_cli_subprocess",
    "runner_command",
    "runner_leftovers",
    "runner_tester",
]
