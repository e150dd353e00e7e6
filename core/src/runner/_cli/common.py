"""State and options shared by the core's commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from runner._plugins.manager import PluginManager

if TYPE_CHECKING:  # imported where used: `runner --help` needs none of these
    from click.shell_completion import CompletionItem

    from runner._contract.recipe import Recipe
    from runner._recipe.source import RecipeSource

F = TypeVar("F", bound=Callable[..., Any])


# Completion imports click.shell_completion and runner._recipe: only when a shell asks.
def _complete_override(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_override

    return complete_override(ctx, param, incomplete)


def _complete_recipe(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_recipe

    return complete_recipe(ctx, param, incomplete)


class AppState:
    """Per-invocation state: debug flag and the (lazily loaded) plugin manager."""

    def __init__(self) -> None:
        self.debug = False
        self._local: list[str] = []
        self._plugins: PluginManager | None = None
        self.recipe_code: list[str] = []
        """Local plugins (files, modules) the last recipe loaded: a recipe with plugins is code."""

    @staticmethod
    def of(ctx: click.Context) -> AppState:
        state = ctx.find_object(AppState)
        if state is None:
            state = ctx.ensure_object(AppState)
        return state

    def add_local_plugins(self, specs: Iterable[str]) -> None:
        for spec in specs:
            if spec in self._local:
                continue
            self._local.append(spec)
            if self._plugins is not None and not spec.startswith("no:"):
                self._plugins.load_local(spec)
            elif self._plugins is not None:
                self._plugins = None  # disabling needs a fresh manager

    @property
    def has_plugins(self) -> bool:
        """Whether the plugin manager was created (and plugins loaded) in this invocation."""
        return self._plugins is not None

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            self._plugins = PluginManager(local_plugins=self._local).load()
        return self._plugins

    def load_recipe(self, path: str, overrides: Iterable[str] = ()) -> tuple[RecipeSource, Recipe]:
        """Read, load the recipe's own plugins, and validate. :attr:`recipe_code` then
        lists the code the recipe (with its overrides) made this process run."""
        from runner._recipe.source import read_recipe
        from runner._recipe.validate import validate

        self.recipe_code = []
        source = read_recipe(path, overrides, collect=True)
        plugins = source.data.get("plugins", [])
        if isinstance(plugins, list):
            specs = [str(source.directory / p) if isinstance(p, str) and p.endswith(".py") else str(p) for p in plugins]
            self.recipe_code = [_shown(spec) for spec in specs if not spec.startswith("no:")]
            self.add_local_plugins(specs)
        manager = self.plugins
        return source, validate(source, manager.registry, manager.failures)


def _shown(spec: str) -> str:
    """A local plugin spec as the user should see it: a file relative to the working directory."""
    import os

    if not spec.endswith(".py"):
        return spec
    relative = os.path.relpath(spec)
    return spec if relative.startswith("..") else relative


def code_note(path: str, code: Iterable[str]) -> str:
    """The line that says a recipe runs code, or ``""``."""
    shown = ", ".join(code)
    return f"{path}: this recipe runs code from: {shown}" if shown else ""


def recipe_options(func: F) -> F:
    """``-o key.path=value`` and ``-p PLUGIN`` for commands that take recipes."""
    func = click.option(
        "-p",
        "--plugin",
        "local_plugins",
        multiple=True,
        metavar="MODULE_OR_FILE",
        help="Load a local plugin (module name or .py file). Repeatable.",
    )(func)
    func = click.option(
        "-o",
        "--override",
        "overrides",
        multiple=True,
        metavar="KEY.PATH=VALUE",
        help="Override a recipe value (TOML syntax; bare words are strings). Repeatable.",
        shell_complete=_complete_override,
    )(func)
    return func


def recipe_path(func: F) -> F:
    return click.argument("recipe", type=click.Path(dir_okay=False, path_type=str), shell_complete=_complete_recipe)(
        func
    )
