"""Composition (extends, defaults), interpolation, overrides that behave, paths relative
to the file that wrote them, and the grammar declared once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from core_helpers import TOY, TOY_PLUGIN, write

from runner._contract import grammar
from runner._contract.errors import RecipeError
from runner._contract.params import at_least, param
from runner._plugins.manager import PluginManager
from runner._recipe.render import render
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

EXTRA = '''
from typing import Any
import runner
from runner import hookimpl


@runner.component
class Wide:
    """A model with a width."""

    width: int = runner.param(8, check=runner.at_least(1))

    def build(self) -> Any:
        raise NotImplementedError


@runner.component
class Deep:
    """A model with a depth."""

    depth: int = runner.param(2)

    def build(self) -> Any:
        raise NotImplementedError


@runner.component
class Table:
    """A dataset read from a file."""

    path: str = runner.param(doc="The file.", path=True)
    split: str = runner.param("train")

    def build(self) -> Any:
        raise NotImplementedError


@hookimpl
def register_models(register: Any) -> None:
    register("wide", Wide)
    register("deep", Deep)


@hookimpl
def register_datasets(register: Any) -> None:
    register("table", Table)
'''

BASE = TOY.replace('plugins = ["toy_plugin.py"]\n', "").replace(
    '[model]\nname = "lin"', '[model]\nname = "wide"\nwidth = 4'
)


@pytest.fixture
def manager(write_plugin: Callable[[str, str], str]) -> PluginManager:
    return PluginManager(local_plugins=[str(TOY_PLUGIN), write_plugin("extra", EXTRA)], use_entry_points=False).load()


def check(path: Path, manager: PluginManager, *overrides: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    source = read_recipe(path, overrides, collect=True)
    return validate(source, manager.registry, manager.failures).resolved, source.notes


def problems(path: Path, manager: PluginManager, *overrides: str) -> list[str]:
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(path, overrides, collect=True), manager.registry, manager.failures)
    return [str(p) for p in caught.value.problems]


# -- composition -----------------------------------------------------------------------------


def test_a_variant_extends_a_base_tables_merge_arrays_replace(tmp_path: Path, manager: PluginManager) -> None:
    write(tmp_path / "base.toml", BASE)
    variant = write(tmp_path / "v.toml", 'extends = "base.toml"\n[run]\nepochs = 5\n[optimizer]\nlr = 0.1\n')
    resolved, notes = check(variant, manager)
    assert resolved["run"]["epochs"] == 5 and resolved["run"]["name"] == "toy"  # merged, not replaced
    assert resolved["optimizer"]["lr"] == 0.1 and resolved["optimizer"]["name"] == "sgd"
    assert resolved["model"] == {"name": "wide", "width": 4}
    assert notes == []


def test_a_group_from_defaults_switches_the_component_and_drops_its_parameters(
    tmp_path: Path, manager: PluginManager
) -> None:
    write(tmp_path / "base.toml", BASE)
    write(tmp_path / "model" / "deep.toml", 'name = "deep"\ndepth = 3\n')
    variant = write(tmp_path / "sub" / "v.toml", 'extends = "../base.toml"\ndefaults = ["model/deep"]\n')
    resolved, notes = check(variant, manager)
    assert resolved["model"] == {"name": "deep", "depth": 3}  # no width: it belonged to wide
    assert len(notes) == 1 and "model: 'wide' -> 'deep'" in notes[0] and "dropped width" in notes[0], notes


def test_problems_point_into_the_included_file_through_two_levels(tmp_path: Path, manager: PluginManager) -> None:
    write(tmp_path / "base.toml", BASE.replace("width = 4", "width = 0\nwidht = 3"))
    write(tmp_path / "mid.toml", 'extends = "base.toml"\n')
    top = write(tmp_path / "top.toml", 'extends = "mid.toml"\n[run]\nepoch = 1\n')
    width = BASE.splitlines().index("width = 4") + 1
    lines = problems(top, manager)
    base = str(tmp_path / "base.toml")
    assert lines == [
        f"{top}:3:1: run.epoch: unknown key (did you mean 'epochs'?)",
        f"{base}:{width}:1: model.width: must be at least 1, found 0",
        f"{base}:{width + 1}:1: model.widht: unknown key (did you mean 'width'?)",
    ]


def test_an_include_cycle_is_one_clear_problem(tmp_path: Path, manager: PluginManager) -> None:
    write(tmp_path / "a.toml", 'extends = "b.toml"\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\n')
    assert problems(tmp_path / "a.toml", manager) == [
        f"{tmp_path / 'b.toml'}:1:1: extends: include cycle: a.toml -> b.toml -> a.toml"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('extends = "\\u0000"', "extends: expected a file name or an array of them"),
        ('defaults = ["model/\\u0000"]', 'defaults: expected an array of "GROUP/OPTION" names'),
        ('extends = "\\n"', "extends: expected a file name or an array of them"),
    ],
)
def test_a_nul_byte_in_an_include_name_is_a_recipe_problem(
    tmp_path: Path, manager: PluginManager, line: str, expected: str
) -> None:
    # Found by the fuzzer: the OS refuses the name with ValueError (an internal error before).
    write(tmp_path / "a.toml", line + "\n")
    assert problems(tmp_path / "a.toml", manager) == [f"{tmp_path / 'a.toml'}:1:1: {expected}"]


def test_a_number_too_large_for_text_is_a_problem_where_it_is_interpolated(
    tmp_path: Path, manager: PluginManager
) -> None:
    # Found by the fuzzer: str() of an integer over 4300 digits raises ValueError.
    write(tmp_path / "a.toml", '[run]\nname = "x-${run.seed}"\nseed = 0x' + "f" * 4000 + "\n")
    lines = problems(tmp_path / "a.toml", manager)
    assert f"{tmp_path / 'a.toml'}:2:1: run.name: a number too large to put in text: int" in lines


def test_a_missing_include_is_located_at_its_line(tmp_path: Path, manager: PluginManager) -> None:
    top = write(tmp_path / "top.toml", 'extends = ["nope.toml"]\n')
    [line] = problems(top, manager)
    assert line.startswith(f"{top}:1:12: extends.0: extends: no such file ") and line.endswith("nope.toml")


# -- interpolation ---------------------------------------------------------------------------


def test_references_keep_their_type_and_fill_text(
    tmp_path: Path, manager: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPOCHS", "7")
    monkeypatch.delenv("NOT_SET", raising=False)
    text = BASE.replace('name = "toy"', 'name = "toy-${model.width}-s${run.seed}-${env:NOT_SET,x}"', 1).replace(
        "epochs = 2", 'epochs = "${env:EPOCHS,3}"'
    )
    resolved, _ = check(write(tmp_path / "r.toml", text), manager)
    assert resolved["run"]["name"] == "toy-4-s0-x"  # run.seed is not written: its default
    assert resolved["run"]["epochs"] == 7  # an int, read from the environment


def test_reference_problems_are_located_where_they_are_written(tmp_path: Path, manager: PluginManager) -> None:
    text = BASE.replace('name = "toy"', 'name = "${run.nmae}"', 1)
    text += '\n[[callbacks]]\nname = "stop_after"\nsteps = "${callbacks.0.steps}"\n'
    path = write(tmp_path / "r.toml", text)
    name_line = text.splitlines().index('name = "${run.nmae}"') + 1
    steps_line = len(text.splitlines())
    assert sorted(problems(path, manager)) == sorted(
        [
            f"{path}:{steps_line}:1: callbacks[0].steps: references form a cycle: "
            "callbacks.0.steps -> callbacks.0.steps",
            f"{path}:{name_line}:1: run.name: ${{run.nmae}}: no key run.nmae in the recipe (did you mean 'name'?)",
        ]
    )


def test_nothing_is_evaluated(tmp_path: Path, manager: PluginManager) -> None:
    path = write(tmp_path / "r.toml", BASE.replace('name = "toy"', "name = \"${__import__('os').getcwd()}\"", 1))
    [line] = problems(path, manager)
    assert "unknown resolver" in line or "no key" in line, line


def test_a_double_dollar_is_a_literal(tmp_path: Path, manager: PluginManager) -> None:
    path = write(tmp_path / "r.toml", BASE)
    source = read_recipe(path, ["run.name=a$${b}"])
    assert source.data["run"]["name"] == "a${b}"


# -- overrides -------------------------------------------------------------------------------


def test_shell_quoted_text_with_a_space_is_a_string(tmp_path: Path) -> None:
    path = write(tmp_path / "r.toml", BASE)
    # bash and zsh turn -o run.name='my run' into the argument run.name=my run
    assert read_recipe(path, ["run.name=my run"]).data["run"]["name"] == "my run"


def test_switching_a_component_on_the_command_line_drops_the_files_parameters(
    tmp_path: Path, manager: PluginManager
) -> None:
    path = write(tmp_path / "r.toml", BASE)
    resolved, notes = check(path, manager, "model.name=deep")
    assert resolved["model"] == {"name": "deep", "depth": 2}
    assert notes == ["model: 'wide' -> 'deep' (command line) dropped width"]
    resolved, _ = check(path, manager, "model.depth=5", "model.name=deep")  # the command line's own stay
    assert resolved["model"] == {"name": "deep", "depth": 5}


def test_override_problems_belong_to_the_command_line(tmp_path: Path, manager: PluginManager) -> None:
    path = write(tmp_path / "r.toml", BASE)  # no [[callbacks]]
    lines = problems(path, manager, "callbacks.0.name=nope", "callbacks.2.name=x")
    assert all(line.startswith("<command line> -o callbacks.") for line in lines), lines
    assert "<command line> -o callbacks.2.name=x: callbacks[2]: bad override: no such item to descend into" in lines
    assert any(
        line.startswith("<command line> -o callbacks.0.name=nope: callbacks[0].name: unknown callback 'nope'")
        for line in lines
    ), lines
    resolved, _ = check(path, manager, "callbacks.0.name=stop_after", "callbacks.0.steps=3")
    assert resolved["callbacks"] == [{"name": "stop_after", "steps": 3}]


# -- paths -----------------------------------------------------------------------------------


def test_a_dataset_path_is_relative_to_the_recipe_file_and_checked(
    tmp_path: Path, manager: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "project" / "data" / "train.csv", "x,y\n1,0\n")
    text = BASE.replace('dataset = { name = "toy", n = 64 }', 'dataset = { name = "table", path = "data/train.csv" }')
    recipe = write(tmp_path / "project" / "r.toml", text)
    monkeypatch.chdir(tmp_path)  # run from another directory
    resolved, _ = check(recipe, manager)
    assert resolved["data"]["train"]["dataset"]["path"] == str(tmp_path / "project" / "data" / "train.csv")
    (tmp_path / "project" / "data" / "train.csv").unlink()
    [line] = problems(recipe, manager)
    assert ": data.train.dataset.path: no such file or directory: " in line and line.startswith(f"{recipe}:"), line
    assert line.endswith("train.csv' (relative to the file that wrote it)"), line


# -- one grammar -----------------------------------------------------------------------------


@attrs.define
class Profile:
    """What a profiler records."""

    every: int = param(100, doc="Profile every N steps.", check=at_least(1))
    memory: bool = param(False, doc="Record memory too.")


def test_a_top_level_table_added_in_one_place_is_everywhere(
    tmp_path: Path, manager: PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = grammar.Key("profile", grammar.Fields(Profile), "table [profile]", "what the profiler records")
    monkeypatch.setattr(grammar, "RECIPE", grammar.RECIPE.with_key(key))  # the one change

    # validated, with the recipe's other problems
    bad = write(tmp_path / "bad.toml", BASE + "\n[profile]\nevery = 0\nmemroy = true\n")
    every = len(BASE.splitlines()) + 3
    assert problems(bad, manager) == [
        f"{bad}:{every}:1: profile.every: must be at least 1, found 0",
        f"{bad}:{every + 1}:1: profile.memroy: unknown key (did you mean 'memory'?)",
    ]
    # resolved (defaults filled in), in recipe show's output
    good = write(tmp_path / "good.toml", BASE + "\n[profile]\nmemory = true\n")
    recipe = validate(read_recipe(good), manager.registry)
    assert recipe.sections["profile"] == Profile(every=100, memory=True)
    assert "[profile]\nevery = 100\nmemory = true\n" in render(recipe.resolved)
    # in the JSON Schema
    from runner._schema.export import key_paths, recipe_schema

    schema = recipe_schema(manager.registry)
    assert schema["properties"]["profile"]["properties"]["every"]["minimum"] == 1
    # completed
    assert "profile.every" in [path for path, _ in key_paths(schema)]
    from runner._cli.complete import _recipe_keys

    assert "profile.memory" in [path for path, _ in _recipe_keys({}, manager.registry)]
    # documented in the generated recipe reference
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "mkdocs_hooks", Path(__file__).parents[2] / "tools" / "mkdocs_hooks.py"
    )
    assert spec is not None and spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    reference = hooks.recipe_keys_markdown(manager.registry)
    assert "| `profile` | table [profile] | what the profiler records |" in reference
    assert (
        "## `[profile]`" in reference and "| `every` | int | `100` | minimum 1 | Profile every N steps. |" in reference
    )
