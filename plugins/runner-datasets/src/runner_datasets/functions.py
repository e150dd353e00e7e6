"""Registered functions: how a recipe names user code (a producer, a map function).

Recipes never give import paths. A plugin, or a local plugin file a recipe lists in
``plugins = [...]``, registers functions with the ``register_functions`` hook, and a
recipe names them: ``producer = "my_items"``. The components look the name up in the
registry the framework passes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

from runner import DataError, Registry

Producer = Union[str, Callable[..., Any]]  # noqa: UP007 - a runtime alias, and Python 3.10 is supported
"""A function registered with ``register_functions`` (by name, as recipes give it), or,
from Python, the function itself."""


def registered_function(function: Producer, registry: Registry | None, what: str) -> Callable[..., Any]:
    """The function ``function`` names (looked up in ``registry``), or ``function`` itself."""
    if callable(function):
        return function
    if registry is None:
        raise DataError(f"{what} {function!r}: a registered function's name needs the registry (runner passes it)")
    return registry.function(function)
