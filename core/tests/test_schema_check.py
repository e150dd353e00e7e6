"""Checking TOML values against Python type hints (runner._schema.check).

Every check returns the converted value plus a list of ``(key path, message)`` issues;
messages say what was expected and what was found, in TOML's vocabulary.
"""

from __future__ import annotations

import enum
import pathlib
from typing import Any, Literal, Optional

import attrs
import pytest

from runner import at_least, param
from runner._contract.params import REQUIRED, one_of_patterns
from runner._schema.check import check, check_table, describe, found
from runner._schema.fields import Field, schema_from_attrs, schema_from_callable


def ok(value: Any, tp: Any) -> Any:
    converted, issues = check(value, tp)
    assert issues == [], issues
    return converted


def only_issue(value: Any, tp: Any) -> tuple[tuple[str | int, ...], str]:
    _, issues = check(value, tp)
    assert len(issues) == 1, issues
    return issues[0]


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.Enum):
    LOW = 1
    HIGH = 2


# -- scalars -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tp"),
    [(True, bool), (False, bool), (3, int), (-1, int), (2.5, float), ("x", str), (3, object), ([1], Any)],
)
def test_values_of_the_right_type_pass_unchanged(value: Any, tp: Any) -> None:
    assert ok(value, tp) == value


@pytest.mark.parametrize(
    ("value", "tp", "message"),
    [
        (True, int, "expected int, found bool True"),
        (1, bool, "expected bool, found int 1"),
        (2.0, int, "expected int, found float 2.0"),
        ("64", int, "expected int, found str '64'"),
        (False, float, "expected float, found bool False"),
        (1, str, "expected str, found int 1"),
        ({"a": 1}, str, "expected str, found table {'a': 1}"),
        ([1], int, "expected int, found list [1]"),
    ],
)
def test_type_mismatch_says_expected_and_found(value: Any, tp: Any, message: str) -> None:
    assert only_issue(value, tp) == ((), message)


def test_bool_is_never_taken_for_an_int_and_vice_versa() -> None:
    # TOML true is not 1: a typo'd bool must not silently become a count.
    assert check(True, int)[1]
    assert check(1, bool)[1]
    assert check(True, Literal[1, 2])[1]
    assert check(True, Level)[1]


def test_float_accepts_an_int_and_converts_it() -> None:
    converted = ok(3, float)
    assert converted == 3.0
    assert type(converted) is float


def test_path_accepts_a_string() -> None:
    assert ok("data/train.csv", pathlib.Path) == pathlib.Path("data/train.csv")
    assert only_issue(3, pathlib.Path) == ((), "expected path (string), found int 3")


def test_found_shortens_long_values() -> None:
    text = found("x" * 100)
    assert text.startswith("str 'xxx") and text.endswith("...") and len(text) < 50


# -- Literal and enums -----------------------------------------------------------------


def test_literal_accepts_listed_values_only() -> None:
    assert ok("adam", Literal["adam", "sgd"]) == "adam"
    assert ok(2, Literal[1, 2]) == 2


def test_literal_suggests_the_closest_value() -> None:
    path, message = only_issue("adamw", Literal["adam", "sgd"])
    assert path == ()
    assert message == "expected one of 'adam', 'sgd', found str 'adamw' (did you mean 'adam'?)"


def test_literal_without_a_close_value_just_lists_them() -> None:
    assert only_issue("zzz", Literal["adam", "sgd"])[1] == "expected one of 'adam', 'sgd', found str 'zzz'"


def test_enum_accepts_value_or_member_name() -> None:
    assert ok("red", Color) is Color.RED
    assert ok("GREEN", Color) is Color.GREEN
    assert ok(2, Level) is Level.HIGH


def test_enum_rejects_others_with_did_you_mean() -> None:
    assert only_issue("gren", Color)[1] == "expected one of 'red', 'green', found str 'gren' (did you mean 'green'?)"
    assert only_issue(3, Level)[1] == "expected one of 1, 2, found int 3"


# -- unions --------------------------------------------------------------------------


def test_optional_accepts_the_inner_type() -> None:
    assert ok(5, Optional[int]) == 5  # noqa: UP045 - the typing spelling must work too
    assert ok(5, int | None) == 5


def test_union_tries_each_member_in_order() -> None:
    assert ok(1.5, int | float) == 1.5
    assert ok("auto", int | str) == "auto"
    converted = ok(1, float | str)
    assert converted == 1.0 and type(converted) is float


def test_union_mismatch_describes_every_alternative() -> None:
    assert only_issue(1.5, int | str) == ((), "expected int or str, found float 1.5")
    assert only_issue("x", int | None) == ((), "expected int, found str 'x'")


def test_union_reports_the_deep_problem_of_a_nearly_matching_member() -> None:
    assert only_issue([1, "a"], list[int] | int) == ((1,), "expected int, found str 'a'")


# -- containers ----------------------------------------------------------------------


def test_list_checks_every_item_and_reports_its_index() -> None:
    converted, issues = check([1, "x", 3, 4.5], list[int])
    assert issues == [((1,), "expected int, found str 'x'"), ((3,), "expected int, found float 4.5")]
    assert converted == [1, "x", 3, 4.5]


def test_list_of_floats_converts_ints() -> None:
    assert ok([1, 2.5], list[float]) == [1.0, 2.5]


def test_list_rejects_a_scalar() -> None:
    assert only_issue(3, list[int]) == ((), "expected list of int, found int 3")


def test_fixed_tuple_checks_length_and_each_position() -> None:
    assert ok([1, "a"], tuple[int, str]) == (1, "a")
    assert only_issue([1, 2, 3], tuple[int, int]) == ((), "expected list of 2 values (int, int), found 3 values")
    assert only_issue([1, 2], tuple[int, str]) == ((1,), "expected str, found int 2")


def test_variadic_tuple_is_a_list_of_one_type() -> None:
    assert ok([1, 2, 3], tuple[int, ...]) == (1, 2, 3)
    assert only_issue([1, "a"], tuple[int, ...]) == ((1,), "expected int, found str 'a'")


def test_dict_checks_values_and_reports_their_keys() -> None:
    assert ok({"a": 1, "b": 2}, dict[str, float]) == {"a": 1.0, "b": 2.0}
    assert only_issue({"a": 1, "b": "x"}, dict[str, int]) == (("b",), "expected int, found str 'x'")


def test_dict_rejects_a_scalar_in_toml_words() -> None:
    assert only_issue(3, dict[str, int]) == ((), "expected table of int, found int 3")


def test_nested_containers_report_full_paths() -> None:
    assert only_issue({"a": [1, 2], "b": [3, "x"]}, dict[str, list[int]]) == (
        ("b", 1),
        "expected int, found str 'x'",
    )


@pytest.mark.parametrize(
    ("tp", "text"),
    [
        (int, "int"),
        (list[int], "list of int"),
        (tuple[int, ...], "list of int"),
        (tuple[int, str], "list of 2 values (int, str)"),
        (dict[str, float], "table of float"),
        (Literal["a", "b"], "one of 'a', 'b'"),
        (Color, "one of 'red', 'green'"),
        (int | None, "int"),
        (int | str, "int or str"),
        (pathlib.Path, "path (string)"),
        (Any, "any value"),
    ],
)
def test_describe_names_types_in_toml_words(tp: Any, text: str) -> None:
    assert describe(tp) == text


# -- nested attrs classes ------------------------------------------------------------


@attrs.define
class Inner:
    width: int = param(8, check=at_least(1))
    mode: Literal["fan_in", "fan_out"] = param("fan_in")


@attrs.define
class Outer:
    name: str = param()
    inner: Inner = param(attrs.Factory(Inner))
    layers: list[Inner] = param(attrs.Factory(list))


def test_nested_attrs_table_becomes_an_instance_with_defaults() -> None:
    assert ok({"width": 3}, Inner) == Inner(width=3, mode="fan_in")


def test_nested_attrs_problems_carry_the_inner_key_path() -> None:
    _, issues = check({"name": "x", "inner": {"width": 0, "mod": "fan_in"}}, Outer)
    assert sorted(issues) == [
        (("inner", "mod"), "unknown key (did you mean 'mode'?)"),
        (("inner", "width"), "must be at least 1, found 0"),
    ]


def test_list_of_attrs_tables() -> None:
    converted = ok({"name": "x", "layers": [{"width": 2}, {"mode": "fan_out"}]}, Outer)
    assert converted.layers == [Inner(2, "fan_in"), Inner(8, "fan_out")]
    assert only_issue({"name": "x", "layers": [{}, {"width": "2"}]}, Outer) == (
        ("layers", 1, "width"),
        "expected int, found str '2'",
    )


def test_nested_attrs_table_rejects_a_scalar() -> None:
    assert only_issue(3, Inner) == ((), "expected table, found int 3")


# -- whole tables --------------------------------------------------------------------


def fields_of(cls: type) -> dict[str, Field]:
    return schema_from_attrs(cls).fields


@attrs.define
class Params:
    depth: int = param(check=at_least(1))
    hidden: list[int] = param([256], doc="hidden layer widths")
    dropout: float = param(0.0, check=at_least(0))
    activation: Literal["relu", "gelu"] = param("relu")


def test_check_table_fills_defaults_and_converts() -> None:
    table, issues = check_table({"depth": 2, "dropout": 1}, fields_of(Params))
    assert issues == []
    assert table == {"depth": 2, "dropout": 1.0, "hidden": [256], "activation": "relu"}


def test_mutable_defaults_are_not_shared() -> None:
    first, _ = check_table({"depth": 1}, fields_of(Params))
    first["hidden"].append(1)
    second, _ = check_table({"depth": 1}, fields_of(Params))
    assert second["hidden"] == [256]


def test_missing_required_key_names_its_type() -> None:
    _, issues = check_table({}, fields_of(Params))
    assert issues == [(("depth",), "missing required key (expected int)")]


def test_unknown_key_suggests_the_closest_field() -> None:
    _, issues = check_table({"depth": 1, "hiden": [3]}, fields_of(Params))
    assert issues == [(("hiden",), "unknown key (did you mean 'hidden'?)")]


def test_unknown_key_without_a_close_field_lists_the_accepted_ones() -> None:
    _, issues = check_table({"depth": 1, "zzz": 1}, fields_of(Params))
    assert issues == [(("zzz",), "unknown key; accepted keys: activation, depth, dropout, hidden")]


def test_every_problem_of_a_table_is_reported() -> None:
    _, issues = check_table({"hidden": [1, "2"], "dropout": -0.5, "activation": "gelo", "extra": 1}, fields_of(Params))
    assert sorted(issues) == [
        (("activation",), "expected one of 'relu', 'gelu', found str 'gelo' (did you mean 'gelu'?)"),
        (("depth",), "missing required key (expected int)"),
        (("dropout",), "must be at least 0, found -0.5"),
        (("extra",), "unknown key; accepted keys: activation, depth, dropout, hidden"),
        (("hidden", 1), "expected int, found str '2'"),
    ]


def test_constraints_run_only_on_well_typed_values() -> None:
    _, issues = check_table({"depth": "two"}, fields_of(Params))
    assert issues == [(("depth",), "expected int, found str 'two'")]


def test_open_tables_keep_unknown_keys() -> None:
    table, issues = check_table({"depth": 1, "anything": [1]}, fields_of(Params), open_table=True)
    assert issues == [] and table["anything"] == [1]


def test_ignored_keys_are_neither_checked_nor_required() -> None:
    table, issues = check_table({"name": 3}, fields_of(Params), ignore=frozenset({"name", "depth"}))
    assert issues == [] and "name" not in table and "depth" not in table


def test_without_fill_defaults_only_given_keys_come_back() -> None:
    table, _ = check_table({"depth": 1}, fields_of(Params), fill_defaults=False)
    assert table == {"depth": 1}


# -- schemas and constraints -----------------------------------------------------------


def test_at_least_accepts_the_bound_and_unset_values() -> None:
    check_min = at_least(1)
    assert check_min(1) is None and check_min(None) is None
    assert check_min(0) == "must be at least 1, found 0"


def test_one_of_patterns_matches_whole_strings() -> None:
    device = one_of_patterns("cpu", r"cuda:\d+")
    assert device("cuda:1") is None
    assert device("cuda:x") == "expected one of cpu, cuda:\\d+, found 'cuda:x'"


def test_schema_from_attrs_keeps_docs_defaults_and_required() -> None:
    fields = fields_of(Params)
    assert fields["hidden"].doc == "hidden layer widths"
    assert fields["depth"].required and fields["depth"].default is REQUIRED
    assert fields["dropout"].default == 0.0 and not fields["dropout"].required
    assert fields["activation"].type == Literal["relu", "gelu"]


def test_schema_from_signature_skips_runtime_arguments() -> None:
    def factory(model: Any, ctx: Any, lr: float, betas: tuple[float, float] = (0.9, 0.99)) -> None: ...

    schema = schema_from_callable(factory, excluded={"model", "ctx"})
    assert list(schema.fields) == ["lr", "betas"]
    assert schema.fields["lr"].required and schema.fields["lr"].type is float
    assert schema.defaults() == {"betas": (0.9, 0.99)}
    assert not schema.open


def test_schema_from_signature_with_kwargs_is_open_and_unannotated_means_any() -> None:
    def factory(size, **rest):  # type: ignore[no-untyped-def]
        ...

    schema = schema_from_callable(factory)
    assert schema.open
    assert schema.fields["size"].type is Any
