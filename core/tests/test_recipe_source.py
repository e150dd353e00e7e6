"""Reading recipe files and applying ``-o key.path=value`` overrides (runner._recipe.source)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner._contract.errors import Problem, RecipeError, RunnerError
from runner._recipe.locate import Location
from runner._recipe.source import format_path, parse_override, parse_toml, read_recipe

RECIPE = """\
[run]
name = "base"
epochs = 3

[model]
name = "lin"
hidden = [16, 16]

[[callbacks]]
name = "stop_after"
steps = 10

[[callbacks]]
name = "probe"
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE, encoding="utf-8")
    return path


def one_problem(excinfo: pytest.ExceptionInfo[RecipeError]) -> Problem:
    assert len(excinfo.value.problems) == 1, excinfo.value.problems
    return excinfo.value.problems[0]


# -- TOML syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("[run\nx = 1\n", 1, 5),
        ("[run]\nname = 'x'\nepochs = = 3\n", 3, 10),
        ('[run]\nname = "unterminated\n', 2, 21),
        ("a = 1\na = 2\n", 2, 6),
        ("[model]\nhidden = [1, 2\n", 3, 1),  # "at end of document": the end of the file
        ("[model]\nhidden = [1, 2", 2, 15),
    ],
)
def test_syntax_error_is_located_by_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(RecipeError) as caught:
        parse_toml(text, "bad.toml")
    problem = one_problem(caught)
    assert (problem.file, problem.line, problem.column, problem.path) == ("bad.toml", line, column, "")
    assert problem.message.startswith("TOML syntax error: ")
    assert "(at line" not in problem.message  # the position moved into file:line:col
    assert str(problem).startswith(f"bad.toml:{line}:{column}: TOML syntax error: ")


def test_read_recipe_reports_syntax_errors_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "syn.toml"
    path.write_text("[run\n", encoding="utf-8")
    with pytest.raises(RecipeError) as caught:
        read_recipe(path)
    assert str(one_problem(caught)).startswith(f"{path}:1:5: TOML syntax error: ")


def test_missing_recipe_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"recipe file .*nope\.toml not found"):
        read_recipe(tmp_path / "nope.toml")


def test_undecodable_recipe_file_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"name = '\xe9'\n")
    with pytest.raises(RunnerError, match="cannot read recipe file"):
        read_recipe(path)


def test_read_recipe_keeps_data_locations_and_directory(recipe: Path) -> None:
    source = read_recipe(recipe)
    assert source.data["callbacks"][1]["name"] == "probe"
    assert source.sources.find(("callbacks", 0, "steps")) == Location(str(recipe), 11, 1)
    assert source.directory == recipe.parent.resolve()


# -- parsing overrides ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "path", "value"),
    [
        ("a.b=1", ("a", "b"), 1),
        ("run.epochs = 5", ("run", "epochs"), 5),
        ("optimizer.lr=1e-3", ("optimizer", "lr"), 0.001),
        ("run.deterministic=true", ("run", "deterministic"), True),
        ("model.name=mlp", ("model", "name"), "mlp"),
        ("run.device=cuda:1", ("run", "device"), "cuda:1"),
        ("data.root=data/raw.v2", ("data", "root"), "data/raw.v2"),
        ("model.name='quoted words'", ("model", "name"), "quoted words"),
        ('model.name="1"', ("model", "name"), "1"),
        ("x=[1,2]", ("x",), [1, 2]),
        ("model.hidden=[64, 32]", ("model", "hidden"), [64, 32]),
        ("loader={batch_size = 8}", ("loader",), {"batch_size": 8}),
        ("callbacks.0.patience=3", ("callbacks", 0, "patience"), 3),
        ("a.b.c='x=y'", ("a", "b", "c"), "x=y"),
    ],
)
def test_override_values_are_toml_and_bare_words_are_strings(item: str, path: tuple[Any, ...], value: Any) -> None:
    parsed_path, parsed = parse_override(item)
    assert parsed_path == path
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("novalue", "expected key.path=value"),
        ("=3", "expected key.path=value"),
        ("a..b=1", "empty key in 'a..b'"),
        ("a.=1", "empty key in 'a.'"),
        ("a=[1,", "cannot parse value '[1,' as TOML (quote strings: key='text')"),
        ("a={x = 1", "cannot parse value '{x = 1' as TOML"),
        ("a='unclosed", 'cannot parse value "\'unclosed" as TOML'),
        ("a=", "cannot parse value '' as TOML"),
    ],
)
def test_malformed_overrides_say_what_is_wrong(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_override(item)
    assert str(caught.value).startswith(message)


# -- applying overrides --------------------------------------------------------------


def test_override_sets_nested_values(recipe: Path) -> None:
    data = read_recipe(recipe, ["run.epochs=7", "model.name=mlp", "model.hidden=[8]"]).data
    assert data["run"]["epochs"] == 7
    assert data["model"] == {"name": "mlp", "hidden": [8]}


def test_override_indexes_into_arrays_of_tables(recipe: Path) -> None:
    data = read_recipe(recipe, ["callbacks.0.steps=3", "callbacks.1.file=out.json"]).data
    assert data["callbacks"][0] == {"name": "stop_after", "steps": 3}
    assert data["callbacks"][1] == {"name": "probe", "file": "out.json"}


def test_override_can_replace_an_array_item(recipe: Path) -> None:
    data = read_recipe(recipe, ["model.hidden.1=4"]).data
    assert data["model"]["hidden"] == [16, 4]


def test_override_creates_missing_tables(recipe: Path) -> None:
    data = read_recipe(recipe, ["scheduler.name=cosine", "scheduler.warmup=10"]).data
    assert data["scheduler"] == {"name": "cosine", "warmup": 10}


def test_later_overrides_win(recipe: Path) -> None:
    assert read_recipe(recipe, ["run.epochs=1", "run.epochs=2"]).data["run"]["epochs"] == 2


def test_overridden_values_are_located_on_the_command_line(recipe: Path) -> None:
    source = read_recipe(recipe, ["run.epochs=0", "model={name='x', depth=2}"])
    assert source.sources.find(("run", "epochs")) == Location("<command line> -o run.epochs=0")
    assert source.sources.find(("model", "depth")) == Location("<command line> -o model={name='x', depth=2}")
    # values the overrides did not touch keep their file location
    assert source.sources.find(("run", "name")) == Location(str(recipe), 2, 1)


@pytest.mark.parametrize(
    ("item", "path", "message"),
    [
        ("run.name.first=x", "run.name", "bad override: not a table"),
        ("callbacks.5.steps=1", "callbacks[5]", "bad override: no such item to descend into"),
        ("callbacks.first.steps=1", "callbacks.first", "bad override: no such item to descend into"),
        ("model.hidden.9=1", "model.hidden[9]", "bad override: no such item"),
        ("model.hidden.x=1", "model.hidden.x", "bad override: no such item"),
        ("a..b=1", "", "bad override: empty key in 'a..b'"),
    ],
)
def test_bad_overrides_are_reported_on_the_command_line(recipe: Path, item: str, path: str, message: str) -> None:
    with pytest.raises(RecipeError) as caught:
        read_recipe(recipe, [item])
    problem = one_problem(caught)
    assert (problem.file, problem.line) == (f"<command line> -o {item}", None)
    assert (problem.path, problem.message) == (path, message)
    where = f"<command line> -o {item}: {path}:" if path else f"<command line> -o {item}:"
    assert str(problem) == f"{where} {message}"


def test_every_bad_override_is_reported_together(recipe: Path) -> None:
    with pytest.raises(RecipeError) as caught:
        read_recipe(recipe, ["nope", "run.epochs=2", "x=[", "callbacks.9.a=1"])
    assert [p.file for p in caught.value.problems] == [
        "<command line> -o nope",
        "<command line> -o x=[",
        "<command line> -o callbacks.9.a=1",
    ]
    assert caught.value.lines()[-1] == "recipe invalid: 3 problems"


def test_format_path_writes_indices_in_brackets() -> None:
    assert format_path(("callbacks", 0, "name")) == "callbacks[0].name"
    assert format_path(("model", "hidden", 1)) == "model.hidden[1]"
    assert format_path(()) == ""
