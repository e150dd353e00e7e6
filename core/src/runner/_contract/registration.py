"""What registration hooks receive: the ``register`` callbacks, and who a plugin is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs


@attrs.frozen
class PluginInfo:
    """Which distribution a plugin (and so a component) comes from."""

    name: str
    dist: str
    version: str

    def __str__(self) -> str:
        return f"{self.dist} {self.version}"


class RegisterComponent(Protocol):
    """The ``register`` callback passed to every ``register_*`` hook.

    ``register(name, "package.module:Class")`` registers a :func:`runner.component`
    declaration (a class, or preferably a lazy reference to one, imported only when its
    parameters or documentation are needed); ``doc`` overrides the summary its docstring
    gives. Still accepted for plugins written before declarations: a factory (or a lazy
    reference to one) whose signature is the schema, and, deprecated, a factory plus
    ``params``, an attrs class (or lazy reference) describing its parameters.
    """

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        params: type | str | None = None,
        doc: str | None = None,
    ) -> None: ...


class RegisterCommand(Protocol):
    """The ``register`` callback passed to ``register_commands``."""

    def __call__(self, name: str, command: Any, *, help: str = "") -> None: ...
