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
    """The ``register`` callback passed to every ``register_*`` hook."""

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
