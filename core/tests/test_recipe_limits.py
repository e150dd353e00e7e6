"""Hostile values in recipes are recipe errors with a location, never internal errors.

Run names (one directory under ``runs/``), integers beyond TOML's 64 bits, integer
literals too long for Python to read, nesting deep enough to exhaust the stack, and
non-finite floats (issue 18, items 2 and 6).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from core_helpers import TOY, check_recipe, recipe_problems, write

from runner._contract.errors import RecipeError
from runner._plugins.manager import PluginManager
from runner._recipe.limits import MAX_NESTING, nesting_position, value_problems
from runner._recipe.source import parse_override, parse_toml, read_recipe
from runner._schema.check import check


def toy_with(line: str, table: str = "[run]") -> str:
    """The toy recipe with ``line`` added at the top of ``table``."""
    return TOY.replace(f"{table}\n", f"{table}\n{line}\n", 1)


# -- run names (item 2) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ('"../../outside/escaped"', "must be one directory name"),
        ('"/tmp/absolute"', "must be one directory name"),
        ('".."', "must be one directory name"),
        ('"."', "must be one directory name"),
        ('".hidden"', "must be one directory name"),
        ('"-rf"', "must be one directory name"),
        ('"a/b"', "must be one directory name"),
        ('"a b"', "must be one directory name"),
        ('"nul\\u0000byte"', "must be one directory name"),
        ('""', "must not be empty"),
        (f'"{"x" * 300}"', "must be at most 100 characters, found 300"),
        (f'"{"x" * 1_000_000}"', "must be at most 100 characters, found 1000000"),
    ],
)
def test_run_names_are_one_safe_directory_name(
    toy_manager: PluginManager, tmp_path: Path, name: str, message: str
) -> None:
    text = TOY.replace('name = "toy"', f"name = {name}", 1)
    [problem] = recipe_problems(text, toy_manager, tmp_path)
    assert problem.startswith(f"{tmp_path / 'recipe.toml'}:5:1: run.name: {message}"), problem
    assert len(problem) < 300  # the value is cut, not printed whole


@pytest.mark.parametrize("name", ["digits", "exp-1", "lr=1e-3,bs=64", "a.b_c+d@e", "_x", "9" * 100])
def test_ordinary_run_names_are_accepted(toy_manager: PluginManager, tmp_path: Path, name: str) -> None:
    recipe = check_recipe(TOY.replace('name = "toy"', f'name = "{name}"', 1), toy_manager, tmp_path)
    assert recipe.run.name == name


# -- numbers and nesting (item 6) -------------------------------------------------------------


def test_an_integer_literal_too_long_to_read_is_located(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as caught:
        parse_toml(f"[run]\nseed = {'9' * 5000}\n", "r.toml")
    assert [str(p) for p in caught.value.problems] == [
        "r.toml:2:8: integer with 5000 digits: TOML integers are 64-bit (at most 19 digits)"
    ]


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("[" * 5000 + "]" * 5000, "3:108"),
        ("{a = " * 2000 + "1" + "}" * 2000, "3:508"),
        ("[" * 101 + "]" * 101, "3:108"),
    ],
)
def test_deep_nesting_is_located_before_the_parser_recurses(value: str, where: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse_toml(f'[run]\nname = "[[[ not nesting # ]]]"\nseed = {value}\n', "r.toml")
    assert [str(p) for p in caught.value.problems] == [
        f"r.toml:{where}: arrays and tables nested deeper than {MAX_NESTING} levels"
    ]


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert parse_toml("x = " + "[" * MAX_NESTING + "]" * MAX_NESTING, "r.toml")
    assert nesting_position('x = "' + "[" * 500 + '"  # ' + "{" * 500) is None


def test_dotted_keys_nesting_too_deep_are_located(toy_manager: PluginManager, tmp_path: Path) -> None:
    path = write(tmp_path / "r.toml", toy_with("a" + ".a" * 5000 + " = 1", "[model]"))
    with pytest.raises(RecipeError) as caught:
        read_recipe(path)  # before tomllib, which takes seconds on such keys
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (18, f"arrays and tables nested deeper than {MAX_NESTING} levels")
    ]
    # a table header and a key below it, each within the limit, nest beyond it together
    text = toy_with("[model." + ".".join(["t"] * 60) + "]\n" + ".".join(["k"] * 60) + " = 1", "lr = 0.5")
    [problem] = recipe_problems(text, toy_manager, tmp_path)
    assert problem.startswith(f"{tmp_path / 'recipe.toml'}:27:1: model.t.t.t.") and problem.endswith(
        f": nested deeper than {MAX_NESTING} levels"
    ), problem


@pytest.mark.parametrize(
    "literal", [str(2**64), str(-(2**63) - 1), "0x" + "f" * 3000, "0b1" + "0" * 64, "0o7" + "7" * 30]
)
def test_integers_beyond_64_bits_are_located(toy_manager: PluginManager, tmp_path: Path, literal: str) -> None:
    [problem] = recipe_problems(toy_with(f"seed = {literal}"), toy_manager, tmp_path)
    assert problem == (
        f"{tmp_path / 'recipe.toml'}:5:1: run.seed: integer out of range: TOML integers are 64-bit "
        "(-9223372036854775808 to 9223372036854775807)"
    )


def test_the_seed_range_is_what_torch_and_numpy_accept(toy_manager: PluginManager, tmp_path: Path) -> None:
    assert check_recipe(toy_with(f"seed = {2**63 - 1}"), toy_manager, tmp_path).run.seed == 2**63 - 1
    [problem] = recipe_problems(toy_with("seed = -1"), toy_manager, tmp_path)
    assert problem.endswith("run.seed: must be between 0 and 9223372036854775807, found -1")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (f"run.seed={'9' * 5000}", "bad override: integer too large: TOML integers are 64-bit (at most 19 digits)"),
        ("run.seed=" + "[" * 5000, f"bad override: value nested deeper than {MAX_NESTING} levels"),
        ("run.seed=18446744073709551616", "run.seed: integer out of range: TOML integers are 64-bit"),
        ("model" + ".a" * 200 + "=1", f"nested deeper than {MAX_NESTING} levels"),
    ],
)
def test_overrides_are_bounded_too(toy_manager: PluginManager, tmp_path: Path, override: str, message: str) -> None:
    [problem] = recipe_problems(TOY, toy_manager, tmp_path, (override,))
    assert problem.startswith("<command line> -o "), problem
    assert message in problem
    assert len(problem) < 400  # a long override is cut in the location


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "+inf", "1e999", f"1{'0' * 400}.0"])
def test_floats_must_be_finite(toy_manager: PluginManager, tmp_path: Path, value: str) -> None:
    [problem] = recipe_problems(TOY.replace("lr = 0.5", f"lr = {value}"), toy_manager, tmp_path)
    assert "optimizer.lr: expected a finite number, found float" in problem


def test_an_optional_float_says_finite_not_a_type_mismatch() -> None:
    assert check(float("inf"), float | None) == (float("inf"), [((), "expected a finite number, found float inf")])
    assert check(float("inf"), float | None, finite=False) == (float("inf"), [])
    assert check([1.0, float("nan")], list[float])[1] == [((1,), "expected a finite number, found float nan")]


def test_a_parameter_may_allow_non_finite_floats() -> None:
    import attrs

    from runner._contract.params import param
    from runner._schema.check import check_table
    from runner._schema.fields import schema_from_attrs

    @attrs.define
    class Params:
        limit: float = param(float("inf"), doc="no limit by default", finite=False)
        rate: float = param(0.1)

    fields = schema_from_attrs(Params).fields
    assert check_table({"limit": float("inf")}, fields)[1] == []
    assert check_table({"rate": float("inf")}, fields)[1] == [(("rate",), "expected a finite number, found float inf")]


def test_value_problems_walks_without_recursion() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(50_000):
        child: list[object] = []
        node.append(child)
        node = child
    [(path, message)] = value_problems({"x": deep})
    assert len(path) == MAX_NESTING and message == f"nested deeper than {MAX_NESTING} levels"
    assert parse_override("x=" + "[" * MAX_NESTING + "]" * MAX_NESTING)[0] == ("x",)


def test_a_problem_is_one_line_whatever_the_key(toy_manager: PluginManager, tmp_path: Path) -> None:
    """Keys with line breaks are shown escaped, very long ones cut (found by the fuzz test)."""
    text = TOY + '"line\\nbreak" = 1\n"' + "k" * 5000 + '" = 2\n'
    problems = recipe_problems(text, toy_manager, tmp_path, ("run.a\u2028b=3",))
    assert all("\n" not in p and "\u2028" not in p and len(p) < 400 for p in problems), problems
    assert any("optimizer.'line\\nbreak': unknown key" in p for p in problems), problems
