"""Whether a registered sampler is resumable, decided before anything is built.

A sampler component declares it (torch-free) with ``__resumable__ = True`` or ``False``
on its ``@runner.component`` class, its parameter class or its factory; a factory that is
a class is inspected for the state protocol (``state_dict``/``load_state_dict``). When
neither says, the answer is unknown at validation and the built sampler is checked when
the loader is built.
"""

from __future__ import annotations

import inspect
from typing import Any

from runner._contract.declaration import is_declaration
from runner._plugins.registry import Component

RESUMABLE_METHODS = ("state_dict", "load_state_dict")


def declared_resumable(component: Component) -> bool | None:
    """True/False when the component says (or its class shows) it; None when unknown."""
    try:
        params_class = component.params_class
    except Exception:
        params_class = None  # an import failure is reported when the schema is read
    for holder in (params_class, component.factory_ref):
        flag = getattr(holder, "__resumable__", None)
        if isinstance(flag, bool):
            return flag
    try:
        factory: Any = component.factory
    except Exception:
        return None  # an import failure is reported when the sampler is built
    flag = getattr(factory, "__resumable__", None)
    if isinstance(flag, bool):
        return flag
    if is_declaration(factory):
        return None  # what its build() returns is known once built
    if inspect.isclass(factory):
        return all(callable(getattr(factory, name, None)) for name in RESUMABLE_METHODS)
    return None
