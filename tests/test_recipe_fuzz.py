"""Fuzzed recipes end in a valid recipe or a clean recipe error, never a crash.

Mutants of ``recipes/digits.toml`` (also as a variant that ``extends`` it): at a random key,
a hostile value (integers far beyond
64 bits or thousands of digits long, inf and nan, arrays, inline tables and dotted keys
nested thousands deep, huge or control-character strings, values of the wrong type) or an
extra key. Each goes through reading and validation as ``runner recipe check`` does it,
in-process: the outcome must be a ``Recipe`` (whose resolved form renders, as a run
writes it) or a ``RunnerError`` of one-line problems (exit 2). The review of issue 18
fuzzed 2000 recipes; the ``slow`` variant does the same, the fast one a sample.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import RunnerError
from runner._plugins.manager import PluginManager
from runner._recipe.render import render
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

#: The same examples on every run (CI must not go red on a new random find); set
#: RUNNER_FUZZ_EXPLORE=1 to search new ones locally, and fix and pin what they find.
DERANDOMIZE = os.environ.get("RUNNER_FUZZ_EXPLORE") != "1"
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"
TREE: dict[str, Any] = tomllib.loads(DIGITS.read_text(encoding="utf-8"))
#: The longest line a problem may print (a value or key is cut, not printed whole).
MAX_LINE = 2000


@attrs.frozen
class Raw:
    """TOML text written as it is (literals Python could not print, nesting, dotted keys)."""

    text: str


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of the tree, tables and leaves."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def string(text: str) -> str:
    """A TOML basic string (JSON escapes are TOML escapes, but for non-BMP characters)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def key_text(key: Any) -> str:
    return key if isinstance(key, str) and key.replace("_", "").replace("-", "").isalnum() else string(str(key))


def emit(value: Any) -> str:
    """Inline TOML for a value of the tree (tables inline: any tree is one line per key)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value) if value == value and abs(value) != float("inf") else repr(value)  # inf, nan
    if isinstance(value, str):
        return string(value)
    if isinstance(value, list):
        return "[" + ", ".join(emit(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{k if isinstance(k, Raw) else key_text(k)} = {emit(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


def document(tree: dict[str, Any]) -> str:
    return "".join(f"{k.text if isinstance(k, Raw) else key_text(k)} = {emit(v)}\n" for k, v in tree.items())


# -- hostile values ---------------------------------------------------------------------------

depths = st.one_of(st.integers(1, 120), st.integers(90, 110), st.integers(100, 6000))
digits = st.one_of(st.integers(1, 30), st.integers(4290, 4310), st.integers(4300, 20000))

numbers = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: Raw(str(n))),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 0, -1]).map(lambda n: Raw(str(n))),
    digits.map(lambda n: Raw("9" * n)),
    digits.map(lambda n: Raw("-" + "1" * n)),
    digits.map(lambda n: Raw("0x" + "f" * n)),
    st.sampled_from(["inf", "-inf", "+inf", "nan", "-nan", "1e999", "-1e999", "1e-999", "0.0", "-0.0"]).map(Raw),
    digits.map(lambda n: Raw("1" * n + ".5")),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: Raw(emit(f))),
)
nesting = st.one_of(
    depths.map(lambda d: Raw("[" * d + "]" * d)),
    depths.map(lambda d: Raw("[" * d + "1" + "]" * d)),
    depths.map(lambda d: Raw("{ a = " * d + "1" + " }" * d)),
    depths.map(lambda d: Raw("[{ a = " * d + "1" + " }]" * d)),
)
strings = st.one_of(
    st.text(max_size=50),
    st.sampled_from(["", ".", "..", "../../outside", "/abs", "-x", "a\x00b", "x" * 300, "\n", "~", "runs"]),
    st.integers(100, 2_000_000).map(lambda n: "x" * n),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=("Cs",)), max_size=20),
    # interpolation: references, environment variables, cycles, resolvers, broken syntax
    st.sampled_from(
        [
            "${run.seed}",
            "${run.name}-${run.seed}",
            "${data.train.loader.batch_size}",
            "${model}",
            "x${model}",
            "${env:HOME}",
            "${env:RUNNER_FUZZ_UNSET,3}",
            "${env:RUNNER_FUZZ_UNSET}",
            "${nope.nope}",
            "${run.name}${run.name}${run.name}",
            "${",
            "$${run.seed}",
            "${os:system}",
            "${__import__('os')}",
            "${callbacks.0.name}",
            "${optimizer.lr}",
            "${}",
            "${.}",
            "${run..seed}",
            "${99999999999999999999999}",
        ]
    ),
    st.text(alphabet="${}.:,abc01 ", max_size=30),
)
plain = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
    st.just([]),
    st.just({}),
    st.sampled_from([Raw("1979-05-27T07:32:00Z"), Raw("07:32:00"), Raw("1979-05-27")]),
)
values = st.recursive(
    st.one_of(plain, numbers),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
hostile = st.one_of(values, numbers, nesting)
dotted_keys = depths.map(lambda d: Raw(".".join(["k"] * d)))
new_keys = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["name", "seed", "plugins", "epochs", "lr", "extends", "defaults"]),
    dotted_keys,
)
#: What a composing recipe names: itself (a cycle), the base, nothing there, directories, odd groups.
includes = st.one_of(
    st.sampled_from(["fuzz.toml", "base.toml", "nope.toml", ".", "..", "/", "", "base.toml/x", "model/mlp", "a//b"]),
    st.lists(st.sampled_from(["base.toml", "fuzz.toml", "model/mlp", "model/..", "../x", "x/"]), max_size=3),
    strings,
)


@st.composite
def mutants(draw: Callable[..., Any], base: dict[str, Any] | None = None) -> str:
    tree = json.loads(json.dumps(TREE if base is None else base))  # a deep copy
    if draw(st.integers(0, 4)) == 0:  # composition keys with odd values
        tree[draw(st.sampled_from(["extends", "defaults"]))] = draw(includes)
    for _ in range(draw(st.integers(1, 3))):
        keys = paths(tree)  # of this mutant: an earlier mutation may have replaced a table
        if draw(st.booleans()):  # replace the value at a random key
            path = draw(st.sampled_from(keys))
            get(tree, path[:-1])[path[-1]] = draw(hostile)
        else:  # add a key to a random table
            table = get(tree, draw(st.sampled_from([p for p in [(), *keys] if isinstance(get(tree, p), dict)])))
            table[draw(new_keys)] = draw(hostile)
    return document(tree)


# -- the property -----------------------------------------------------------------------------

_MANAGER: list[PluginManager] = []


def manager() -> PluginManager:
    if not _MANAGER:
        _MANAGER.append(PluginManager().load())
    return _MANAGER[0]


def check_clean(text: str, path: Path) -> None:
    """Valid (and its resolved form renders) or a RunnerError of one-line problems."""
    path.write_text(text, encoding="utf-8")
    plugins = manager()
    try:
        recipe = validate(read_recipe(path, collect=True), plugins.registry, plugins.failures)
    except RunnerError as exc:
        lines = exc.lines()
        assert lines and all(line and "\n" not in line and len(line) <= MAX_LINE for line in lines), lines[:3]
        return
    render(recipe.resolved)


def test_the_unmutated_recipe_is_valid(tmp_path: Path) -> None:
    """The serializer writes digits.toml faithfully, so mutants differ only by the mutation."""
    path = tmp_path / "r.toml"
    path.write_text(document(TREE), encoding="utf-8")
    assert tomllib.loads(document(TREE)) == TREE
    validate(read_recipe(path), manager().registry)


@given(mutants())
@settings(max_examples=150, deadline=None, suppress_health_check=HEALTH, derandomize=DERANDOMIZE)
def test_fuzzed_recipes_are_valid_or_clean_errors(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    check_clean(text, tmp_path_factory.getbasetemp() / "fuzz.toml")


@pytest.mark.slow
@given(mutants())
@settings(max_examples=2000, deadline=None, suppress_health_check=HEALTH, derandomize=DERANDOMIZE)
def test_2000_fuzzed_recipes_are_valid_or_clean_errors(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    check_clean(text, tmp_path_factory.getbasetemp() / "fuzz-slow.toml")


VARIANT: dict[str, Any] = {"extends": "base.toml", "run": {"name": "variant-${run.seed}"}, "model": {"hidden": [64]}}


@given(mutants(base=VARIANT))
@settings(max_examples=100, deadline=None, suppress_health_check=HEALTH, derandomize=DERANDOMIZE)
def test_fuzzed_variants_of_an_included_base_are_valid_or_clean_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """The mutant extends digits.toml (as base.toml); the base itself may be mutated too."""
    directory = tmp_path_factory.getbasetemp() / "variants"
    directory.mkdir(exist_ok=True)
    (directory / "base.toml").write_text(document(TREE), encoding="utf-8")
    (directory / "model").mkdir(exist_ok=True)
    (directory / "model" / "mlp.toml").write_text('name = "mlp"\nhidden = [32]\n', encoding="utf-8")
    check_clean(text, directory / "fuzz.toml")
