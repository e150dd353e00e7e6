"""Registered functions (``register_functions``) and parameters that name them
(``param(registered="function")``): the only way a recipe reaches user code besides its
``plugins`` list (issue 18, item 1)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import TOY, check_recipe, recipe_problems

from runner._contract.errors import PluginError, RunnerError
from runner._plugins.manager import PluginManager
from runner._plugins.registry import KINDS

PLUGIN = """
import attrs

from runner import hookimpl, param


def double(x):
    return 2 * x


@attrs.define
class ApplyParams:
    fn: str = param(doc="a registered function", registered="function")
    more: list[str] = param([], doc="more of them", registered="function")
    optional: str | None = param(None, registered="function")


def apply(fn, more=(), optional=None, registry=None):
    return [registry.function(name) for name in [fn, *more]]


@hookimpl
def register_functions(register):
    register("double", double)
    register("halve", "fractions:Fraction")  # lazy, like any factory
    register("not_callable", "math:pi")


@hookimpl
def register_callbacks(register):
    register("apply", apply, params=ApplyParams)
"""


@pytest.fixture
def manager(write_plugin: Callable[[str, str], str], toy_manager: PluginManager) -> PluginManager:
    toy_manager.load_local(write_plugin("functions", PLUGIN))
    return toy_manager


def with_callback(table: str) -> str:
    return TOY + f"\n[[callbacks]]\n{table}\n"


def test_function_is_a_component_kind() -> None:
    assert "function" in KINDS


def test_registry_function_returns_the_function_or_a_clear_error(manager: PluginManager) -> None:
    registry = manager.registry
    assert registry.function("double")(4) == 8
    assert registry.function("halve")(1, 2) == 0.5  # imported on first use
    assert registry.names("function") == ["double", "halve", "not_callable"]
    with pytest.raises(RunnerError, match=r"unknown function 'dobule' \(did you mean 'double'\?\)"):
        registry.function("dobule")
    with pytest.raises(PluginError, match=r"function 'not_callable' from plugin .* is not callable"):
        registry.function("not_callable")


def test_names_of_registered_functions_are_checked_at_validation(manager: PluginManager, tmp_path: Path) -> None:
    text = with_callback('name = "apply"\nfn = "dobule"\nmore = ["halve", "os:system"]\noptional = "subprocess:run"')
    problems = recipe_problems(text, manager, tmp_path)
    recipe = f"{tmp_path / 'recipe.toml'}"
    hint = "a plugin registers functions with register_functions (a recipe's plugins = [...] file can)"
    assert problems == [
        f"{recipe}:29:1: callbacks[0].fn: unknown function 'dobule' (did you mean 'double'?); {hint}",
        f"{recipe}:30:18: callbacks[0].more[1]: unknown function 'os:system'; registered functions: double, halve, "
        f"not_callable; {hint}",
        f"{recipe}:31:1: callbacks[0].optional: unknown function 'subprocess:run'; registered functions: double, "
        f"halve, not_callable; {hint}",
    ]
    recipe_ok = check_recipe(with_callback('name = "apply"\nfn = "double"\nmore = ["halve"]'), manager, tmp_path)
    assert recipe_ok.callbacks[0].params == {"fn": "double", "more": ["halve"], "optional": None}


def test_a_wrong_type_is_reported_once(manager: PluginManager, tmp_path: Path) -> None:
    [problem] = recipe_problems(with_callback('name = "apply"\nfn = 3'), manager, tmp_path)
    assert problem.endswith("callbacks[0].fn: expected str, found int 3")
