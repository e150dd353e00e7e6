"""Components declared once: ``@runner.component`` classes with ``@runner.check`` rules.

The ``ranges`` plugin below declares a dataset whose ``min_len <= max_len`` rule relates
two parameters. The tests show the declaration gives the schema, defaults, docs and the
build, that ``runner recipe check`` reports a broken rule with the recipe's other
problems, that building from Python never reaches ``build`` with a broken combination,
and that the older registration forms keep working (the three-piece one with a
deprecation warning in the tools plugin authors run).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import TOY, check_recipe, recipe_problems, write

import runner
from runner._contract.errors import PluginError, RunnerError
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._plugins.registry import Component
from runner._samplers.protocol import declared_resumable
from runner.testing import RunnerTester

RANGES = '''
"""A plugin declaring its components once (no torch at import)."""

from __future__ import annotations

from typing import Any, ClassVar

import runner


@runner.component
class Ranges:
    """Rows of integer ranges, one per sample.

    Row i is range(min_len + i % (max_len - min_len + 1)).
    """

    n: int = runner.param(8, doc="Number of samples.", check=runner.at_least(1))
    min_len: int = runner.param(1, doc="Shortest range.", check=runner.at_least(0))
    max_len: int = runner.param(4, doc="Longest range.")
    BUILT: ClassVar[Any] = None

    @runner.check("min_len", "max_len")
    def _ordered(self) -> str | None:
        if self.min_len > self.max_len:
            return f"min_len ({self.min_len}) must not exceed max_len ({self.max_len})"
        return None

    def build(self, seed: int, ctx: Any) -> list[list[int]]:
        type(self).BUILT = {"seed": seed, "rank": ctx.rank, "n": self.n}
        span = self.max_len - self.min_len + 1
        return [list(range(self.min_len + i % span)) for i in range(self.n)]


@runner.hookimpl
def register_datasets(register: Any) -> None:
    register("ranges", "ranges_plugin:Ranges")
    register("ranges_doc", Ranges, doc="Ranges, with a summary given at registration.")
'''

RECIPE = TOY.replace('dataset = { name = "toy", n = 64 }', 'dataset = { name = "ranges", min_len = 5, max_len = 2 }')


@pytest.fixture
def ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginManager:
    """Built-ins, the toy plugin and ``ranges_plugin`` (importable by its module name)."""
    from core_helpers import TOY_PLUGIN

    write(tmp_path / "ranges_plugin.py", RANGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "ranges_plugin", raising=False)
    return PluginManager(local_plugins=[str(TOY_PLUGIN), "ranges_plugin"], use_entry_points=False).load()


# -- the declaration is the schema, the docs and the factory ----------------------------------


def test_fields_are_the_schema_and_the_docstring_the_documentation(ranges: PluginManager) -> None:
    component = ranges.registry.get("dataset", "ranges")
    assert {name: (f.default, f.doc) for name, f in component.schema.fields.items()} == {
        "n": (8, "Number of samples."),
        "min_len": (1, "Shortest range."),
        "max_len": (4, "Longest range."),
    }
    assert component.summary == "Rows of integer ranges, one per sample."
    assert ranges.registry.get("dataset", "ranges_doc").summary == "Ranges, with a summary given at registration."


def test_the_docstring_describes_the_component_in_the_recipe_schema(ranges: PluginManager) -> None:
    from runner._schema.export import recipe_schema

    datasets = recipe_schema(ranges.registry)["$defs"]["dataset"]["allOf"]
    ranges_branch = next(b["then"] for b in datasets if b["if"]["properties"]["name"]["const"] == "ranges")
    assert ranges_branch["description"].startswith(
        "Rows of integer ranges, one per sample.\n\nRow i is range(min_len + i % (max_len - min_len + 1))."
    )
    assert ranges_branch["properties"]["min_len"]["description"] == "Shortest range. (int)"


def test_the_summary_is_the_first_paragraph_on_one_line() -> None:
    @runner.component
    class Wrapped:
        """A summary too long for one line of source,
        wrapped onto a second.

        Details.
        """

        def build(self) -> None:
            return None

    summary = Component("model", "wrapped", Wrapped, PluginInfo("p", "p", "1")).summary
    assert summary == "A summary too long for one line of source, wrapped onto a second."


def test_build_receives_the_runtime_arguments_it_names(ranges: PluginManager) -> None:
    component = ranges.registry.get("dataset", "ranges")
    ctx = runner.BuildContext(recipe=None, seed=3, run_dir=Path("."), rank=0)  # type: ignore[arg-type]
    built = component.build({"n": 3, "min_len": 1, "max_len": 2}, seed=7, ctx=ctx, build_dataset=None)
    assert built == [[0], [0, 1], [0]]
    assert component.declaration is not None and component.declaration.BUILT == {"seed": 7, "rank": 0, "n": 3}


def test_a_recipe_trains_on_a_declared_component(ranges: PluginManager, tmp_path: Path) -> None:
    recipe = check_recipe(RECIPE.replace("min_len = 5", "min_len = 1"), ranges, tmp_path)
    assert recipe.train is not None and recipe.train.dataset.params == {"n": 8, "min_len": 1, "max_len": 2}


# -- cross-field rules ------------------------------------------------------------------------


def test_recipe_check_reports_a_broken_rule_at_the_first_key_with_every_other_problem(
    ranges: PluginManager, tmp_path: Path
) -> None:
    text = RECIPE.replace('name = "lin"', 'name = "lni"')
    written = 'dataset = { name = "ranges", min_len = 5, max_len = 2 }'
    where = f"{tmp_path / 'recipe.toml'}:{text.splitlines().index(written) + 1}:{written.index('min_len') + 1}"
    problems = recipe_problems(text, ranges, tmp_path)
    assert f"{where}: data.train.dataset.min_len: min_len (5) must not exceed max_len (2)" in problems
    assert any("model.name: unknown model 'lni'" in p for p in problems)
    assert len(problems) == 2, problems


@pytest.mark.slow  # starts processes
def test_the_cli_reports_a_broken_rule_with_exit_status_2(
    cli: Callable[..., Any], tmp_path: Path, ranges: PluginManager
) -> None:
    from core_helpers import TOY_PLUGIN

    write(tmp_path / "toy_plugin.py", TOY_PLUGIN.read_text(encoding="utf-8"))
    write(
        tmp_path / "r.toml",
        RECIPE.replace('plugins = ["toy_plugin.py"]', 'plugins = ["toy_plugin.py", "ranges_plugin"]'),
    )
    done = cli("recipe", "check", "r.toml", env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    assert "data.train.dataset.min_len: min_len (5) must not exceed max_len (2)" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_rule_runs_while_unrelated_keys_have_problems_and_waits_for_its_own(
    ranges: PluginManager, tmp_path: Path
) -> None:
    unrelated = recipe_problems(RECIPE.replace("max_len = 2", "max_len = 2, n = 0"), ranges, tmp_path)
    assert [p.split(": ", 1)[1] for p in unrelated] == [
        "data.train.dataset.min_len: min_len (5) must not exceed max_len (2)",
        "data.train.dataset.n: must be at least 1, found 0",
    ]
    own = recipe_problems(RECIPE.replace("max_len = 2", 'max_len = "two"'), ranges, tmp_path)
    assert [p.split(": ", 1)[1] for p in own] == ["data.train.dataset.max_len: expected int, found str 'two'"]


def test_a_rule_counts_defaults(ranges: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(RECIPE.replace(", max_len = 2", ""), ranges, tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "data.train.dataset.min_len: min_len (5) must not exceed max_len (4)"
    ]


def test_building_from_python_never_reaches_build_with_a_broken_combination(ranges: PluginManager) -> None:
    component = ranges.registry.get("dataset", "ranges")
    with pytest.raises(RunnerError, match=r"dataset 'ranges' \(plugin .*\): min_len: min_len \(3\) must not exceed"):
        component.build({"n": 2, "min_len": 3, "max_len": 1}, seed=0, ctx=None)
    assert component.declaration is not None and component.declaration.BUILT is None


def test_runner_testing_checks_rules_of_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "ranges_plugin.py", RANGES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "ranges_plugin", raising=False)
    import ranges_plugin

    tester = RunnerTester(tmp_path)
    assert tester.check_components(ranges_plugin) == []
    bad = {("dataset", "ranges"): {"min_len": 4, "max_len": 1}}
    assert tester.check_components(ranges_plugin, examples=bad) == [
        "dataset 'ranges': example parameters invalid: min_len: min_len (4) must not exceed max_len (1)"
    ]


def test_a_rule_that_raises_is_the_plugins_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "ranges_plugin.py", RANGES.replace("if self.min_len > self.max_len:", "if 1 / 0:"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "ranges_plugin", raising=False)
    manager = PluginManager(local_plugins=["ranges_plugin"], use_entry_points=False).load()
    component = manager.registry.get("dataset", "ranges")
    with pytest.raises(
        PluginError, match=r"dataset 'ranges' \(plugin ranges_plugin local\): check _ordered\(\) raised"
    ):
        component.check_params({"n": 1, "min_len": 1, "max_len": 2})


# -- mistakes in a declaration ----------------------------------------------------------------


def test_a_declaration_needs_build() -> None:
    with pytest.raises(TypeError, match=r"class .*NoBuild needs a build\(self, \.\.\.\) method"):

        @runner.component
        class NoBuild:
            size: int = runner.param(1)


def test_a_rule_must_name_parameters() -> None:
    with pytest.raises(TypeError, match=r"_rule\(\) names 'sise', which is not a parameter \(parameters: size\)"):

        @runner.component
        class Misspelt:
            size: int = runner.param(1)

            @runner.check("sise")
            def _rule(self) -> str | None:
                return None

            def build(self) -> int:
                return self.size


def test_a_parameter_named_after_a_python_keyword_drops_its_trailing_underscore(tmp_path: Path) -> None:
    """``async_`` (PEP 8's spelling of a keyword as a name) is the recipe key ``async``: in the
    schema, the rules, the build and the rendered recipe."""

    @runner.component
    class Saver:
        """Saves."""

        async_: bool = runner.param(False, doc="In the background.")
        every: int = runner.param(1)

        @runner.check("async", "every")
        def _rule(self) -> str | None:
            return "async needs every > 1" if self.async_ and self.every < 2 else None

        def build(self) -> bool:
            return self.async_

    component = Component("checkpointer", "saver", Saver, PluginInfo("p", "p", "1"))
    assert list(component.schema.fields) == ["async", "every"]
    assert component.build({"async": True, "every": 2}) is True
    with pytest.raises(RunnerError, match="async: async needs every > 1"):
        component.build({"async": True, "every": 1})
    assert component.check_params({"async": True, "every": 1}) == [(("async",), "async needs every > 1")]
    from runner._recipe.render import render

    assert render({"checkpoint": Saver(async_=True)}) == "[checkpoint]\nasync = true\nevery = 1\n"


def test_params_next_to_a_declaration_is_an_error() -> None:
    @runner.component
    class Sized:
        """Sized."""

        size: int = runner.param(1)

        def build(self) -> int:
            return self.size

    component = Component("model", "sized", Sized, PluginInfo("p", "p", "1"), params=Sized)
    with pytest.raises(PluginError, match="declares its own parameters; register it without params="):
        _ = component.schema


def test_a_declared_sampler_is_resumable_when_it_says_so() -> None:
    @runner.component
    class Says:
        __resumable__ = True

        def build(self) -> list[int]:
            return []

    @runner.component
    class Silent:
        def build(self) -> list[int]:
            return []

    info = PluginInfo("p", "p", "1")
    assert declared_resumable(Component("sampler", "says", Says, info)) is True
    assert declared_resumable(Component("sampler", "silent", Silent, info)) is None  # known once built


# -- older forms ------------------------------------------------------------------------------


LEGACY = '''
import attrs

from runner import hookimpl, param


@attrs.define
class WidthParams:
    """Widths."""

    width: int = param(2, doc="How wide.")


def widths(width: int = 2) -> list[int]:
    return list(range(width))


def bare(size: int = 3) -> list[int]:
    """A bare factory: its signature is the schema."""
    return list(range(size))


@hookimpl
def register_datasets(register):
    register("widths", widths, params=WidthParams)
    register("bare", bare)
'''


def test_the_three_piece_form_warns_only_in_check_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "legacy_plugin.py", LEGACY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "legacy_plugin", raising=False)
    import legacy_plugin

    manager = PluginManager(local_plugins=["legacy_plugin"], use_entry_points=False).load()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # validating and building never warn: users see nothing
        assert manager.registry.get("dataset", "widths").build({"width": 3}) == [0, 1, 2]
    with pytest.warns(DeprecationWarning) as caught:
        assert RunnerTester(tmp_path).check_components(legacy_plugin) == []
    assert [str(w.message) for w in caught] == [
        "plugin legacy_plugin test: dataset 'widths' is registered with params= and a separate factory, which is "
        "deprecated: make WidthParams the component (decorate it with @runner.component and move the factory's "
        "body into its build(self, ...) method), then register the class alone: "
        "register('widths', 'legacy_plugin:WidthParams')"
    ]
    assert caught[0].filename == __file__


def test_the_three_piece_form_is_validated_and_documented_without_importing_its_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The factory's module may import torch: only building imports it, as before."""
    import sys

    write(
        tmp_path / "legacy_plugin.py",
        LEGACY.replace('register("widths", widths,', 'register("widths", "legacy_factory:widths",'),
    )
    write(tmp_path / "legacy_factory.py", "def widths(width: int = 2) -> list[int]:\n    return list(range(width))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in ("legacy_plugin", "legacy_factory"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    component = (
        PluginManager(local_plugins=["legacy_plugin"], use_entry_points=False).load().registry.get("dataset", "widths")
    )
    assert list(component.schema.fields) == ["width"] and component.summary == "Widths."
    assert component.deprecation is not None and component.check_params({"width": 2}) == []
    assert "legacy_factory" not in sys.modules
    assert component.build({"width": 2}) == [0, 1] and "legacy_factory" in sys.modules


@pytest.mark.slow  # starts processes
def test_doctor_lists_the_three_piece_form_as_a_warning(cli: Callable[..., Any], tmp_path: Path) -> None:
    write(tmp_path / "legacy_plugin.py", LEGACY)
    done = cli("-p", "legacy_plugin.py", "plugins", "doctor")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "no problems found"
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "dataset 'widths' is registered with params= and a separate factory" in warned[0]
    plain = cli("-p", "legacy_plugin.py", "plugins")
    assert plain.returncode == 0 and plain.stderr == ""


# -- runner explain ---------------------------------------------------------------------------


WATCH = '''
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import runner

if TYPE_CHECKING:
    from watch_impl import Watcher


@runner.component
class Watch:
    """Watches the run end."""

    def build(self) -> Watcher:
        from watch_impl import Watcher

        return Watcher()


@runner.hookimpl
def register_callbacks(register: Any) -> None:
    register("watch", "watch_plugin:Watch")
'''

WATCHER = """
class Watcher:
    def on_end_train(self, run, global_step):
        pass
"""


def test_explain_reads_the_hooks_of_what_build_returns_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from runner._cli.tools.explain import explain_components, explain_hooks
    from runner._recipe.source import read_recipe

    write(tmp_path / "watch_plugin.py", WATCH)
    write(tmp_path / "watch_impl.py", WATCHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    from core_helpers import TOY_PLUGIN

    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), "watch_plugin"], use_entry_points=False).load()
    recipe = check_recipe(TOY + '\n[[callbacks]]\nname = "watch"\n', manager, tmp_path)
    hooks, notes = explain_hooks(recipe, manager)
    assert notes == []
    assert [impl.owner for impl in hooks["on_end_train"]] == ["callback:watch#0"]
    assert "watch_impl" not in sys.modules
    source = read_recipe(tmp_path / "recipe.toml", ())
    summaries = {item.path: item.summary for item in explain_components(source, recipe, manager)}
    assert summaries["callbacks[0]"] == "Watches the run end."
    assert (
        summaries["data.train.dataset"] == "In-memory tensors: the loader's fast path."  # a factory's docstring
    )
    monkeypatch.delitem(sys.modules, "watch_plugin", raising=False)
