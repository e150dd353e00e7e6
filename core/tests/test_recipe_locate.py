"""Finding where each key path is written in a TOML recipe (runner._recipe.locate).

Locations are 1-based (line, column) of where the key, table header or array item starts;
a path nobody wrote is located at its closest written ancestor.
"""

from __future__ import annotations

import sys
import textwrap

import pytest

from runner._recipe.locate import Location, SourceMap, locate

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def where(text: str, *path: str | int) -> tuple[int | None, int | None]:
    """(line, column) of ``path`` in ``text``; also asserts the text is valid TOML."""
    text = textwrap.dedent(text).lstrip("\n")
    tomllib.loads(text)
    location = locate(text, "r.toml").find(path)
    assert location.file == "r.toml"
    return location.line, location.column


def test_table_headers_and_their_keys() -> None:
    text = """
        # a comment
        [run]
        name = "x"
          epochs = 3

        [data.train]
        dataset = "d"
    """
    assert where(text, "run") == (2, 1)
    assert where(text, "run", "name") == (3, 1)
    assert where(text, "run", "epochs") == (4, 3)
    assert where(text, "data", "train") == (6, 1)
    assert where(text, "data") == (6, 1)
    assert where(text, "data", "train", "dataset") == (7, 1)


def test_header_with_spaces_and_quoted_parts() -> None:
    text = """
        [ data . "val" . 'main set' ]
        x = 1
    """
    assert where(text, "data", "val", "main set", "x") == (2, 1)
    assert where(text, "data", "val", "main set") == (1, 1)


def test_dotted_keys_locate_every_prefix_at_the_key() -> None:
    text = """
        [model]
        name = "mlp"
        init.scale = 2.0
        "odd.key" = 1
    """
    assert where(text, "model", "init") == (3, 1)
    assert where(text, "model", "init", "scale") == (3, 1)
    assert where(text, "model", "odd.key") == (4, 1)


def test_top_level_dotted_key() -> None:
    assert where("a = 1\nrun.epochs = 2\n", "run", "epochs") == (2, 1)


def test_inline_tables_locate_each_inner_key() -> None:
    text = """
        [data.train]
        loader = { batch_size = 32, shuffle = true, nested = { deep = 1 } }
    """
    assert where(text, "data", "train", "loader") == (2, 1)
    assert where(text, "data", "train", "loader", "batch_size") == (2, 12)
    assert where(text, "data", "train", "loader", "shuffle") == (2, 29)
    assert where(text, "data", "train", "loader", "nested", "deep") == (2, 56)


def test_arrays_of_tables_are_indexed() -> None:
    text = """
        [[callbacks]]
        name = "early_stop"

        [[loggers]]
        name = "csv"

        [[callbacks]]
        name = "probe"
        patience = 3
    """
    assert where(text, "callbacks", 0) == (1, 1)
    assert where(text, "callbacks", 0, "name") == (2, 1)
    assert where(text, "loggers", 0, "name") == (5, 1)
    assert where(text, "callbacks", 1) == (7, 1)
    assert where(text, "callbacks", 1, "patience") == (9, 1)


def test_sub_tables_of_an_array_of_tables_element() -> None:
    text = """
        [[callbacks]]
        name = "a"
        [callbacks.options]
        x = 1

        [[callbacks]]
        name = "b"
        [callbacks.options]
        x = 2
        [[callbacks.rules]]
        when = "val"
    """
    data = tomllib.loads(textwrap.dedent(text).lstrip("\n"))
    assert data["callbacks"][1]["rules"][0]["when"] == "val"
    assert where(text, "callbacks", 0, "options", "x") == (4, 1)
    assert where(text, "callbacks", 1, "options") == (8, 1)
    assert where(text, "callbacks", 1, "options", "x") == (9, 1)
    assert where(text, "callbacks", 1, "rules", 0, "when") == (11, 1)


def test_array_items_in_a_multi_line_array() -> None:
    text = """
        [model]
        hidden = [
            64,   # first
            # a comment line
            [1, 2],
            { a = 1 },
        ]
        after = true
    """
    assert where(text, "model", "hidden") == (2, 1)
    assert where(text, "model", "hidden", 0) == (3, 5)
    assert where(text, "model", "hidden", 1) == (5, 5)
    assert where(text, "model", "hidden", 1, 1) == (5, 9)
    assert where(text, "model", "hidden", 2, "a") == (6, 7)
    assert where(text, "model", "after") == (8, 1)


@pytest.mark.parametrize(
    "value",
    [
        '"a # not a comment"',
        '"key = value"',
        '"[not.a.table]"',
        "'[[neither]]'",
        r'"say \"hi\" # there"',
        r'"ends with backslash \\"',
        "'C:\\path\\'",
        '"""multi\nline [x]\n= y"""',
        "'''it's # fine'''",
        '"""ends with a quote""""',
        "'''two quotes'''''",
        '["a,b", "c]d", "{e"]',
        '{ s = "}", t = "," }',
    ],
)
def test_strings_with_toml_punctuation_do_not_confuse_the_skimmer(value: str) -> None:
    text = f"[run]\nfirst = {value}\nsecond = 1 # after\n[model]\nname = 'm'\n"
    tomllib.loads(text)
    lines_of_value = value.count("\n")
    located = locate(text, "r.toml")
    assert located.find(("run", "second")) == Location("r.toml", 3 + lines_of_value, 1)
    assert located.find(("model", "name")) == Location("r.toml", 5 + lines_of_value, 1)


def test_unknown_paths_fall_back_to_the_closest_written_ancestor() -> None:
    text = "[run]\nname = 'x'\n"
    assert where(text, "run", "nonexistent", "deeper") == (1, 1)
    located = locate(text, "r.toml")
    assert located.find(("model",)) == Location("r.toml")


def test_windows_line_endings() -> None:
    text = "[run]\r\nname = 'x'\r\nepochs = 3\r\n"
    tomllib.loads(text)
    assert locate(text, "r.toml").find(("run", "epochs")) == Location("r.toml", 3, 1)


def test_override_owns_the_path_and_everything_below() -> None:
    text = "[model]\nname = 'm'\ninit = { scale = 1 }\n"
    located = locate(text, "r.toml")
    command_line = Location("<command line> -o model.init={}")
    located.override(("model", "init"), command_line)
    assert located.find(("model", "init", "scale")) is command_line
    assert located.find(("model", "name")) == Location("r.toml", 2, 1)


def test_set_keeps_the_first_location() -> None:
    source = SourceMap(Location("f"))
    source.set(("a",), Location("f", 1, 1))
    source.set(("a",), Location("f", 9, 9))
    assert source.find(("a",)) == Location("f", 1, 1)
