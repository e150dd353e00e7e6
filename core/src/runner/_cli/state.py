"""Per-invocation CLI state: debug flag, local plugins and the lazily loaded plugin manager."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, overload

import click

from runner._plugins.manager import PluginManager

if TYPE_CHECKING:
    from runner._contract.recipe import ProcessingRecipe, Recipe
    from runner._recipe.source import RecipeSource


class AppState:
    """Per-invocation state: debug flag and the (lazily loaded) plugin manager."""

    def __init__(self) -> None:
        self.debug = False
        #: Print the plugins' warnings (misspelt hooks, name clashes...) on stderr, once each.
        self.announce = True
        self._announced: set[str] = set()
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
    def local_specs(self) -> tuple[str, ...]:
        """The local plugins (``-p`` and the last recipe's ``plugins``) this invocation loads."""
        return tuple(self._local)

    @property
    def has_plugins(self) -> bool:
        """Whether the plugin manager was created (and plugins loaded) in this invocation."""
        return self._plugins is not None

    @property
    def plugins(self) -> PluginManager:
        if self._plugins is None:
            self._plugins = PluginManager(local_plugins=self._local).load()
        if self.announce:
            self._announce(self._plugins)
        return self._plugins

    def _announce(self, manager: PluginManager) -> None:
        import os

        if "_RUNNER_COMPLETE" in os.environ:  # shell completion: stderr would garble the prompt
            return
        for line in manager.warnings():
            if line not in self._announced:
                self._announced.add(line)
                click.echo(f"warning: {line}", err=True)

    @overload
    def load_recipe(
        self, path: str, overrides: Iterable[str] = (), *, processing: Literal[False] = False
    ) -> tuple[RecipeSource, Recipe]: ...

    @overload
    def load_recipe(
        self, path: str, overrides: Iterable[str] = (), *, processing: bool
    ) -> tuple[RecipeSource, Recipe | ProcessingRecipe]: ...

    def load_recipe(
        self, path: str, overrides: Iterable[str] = (), *, processing: bool = False
    ) -> tuple[RecipeSource, Recipe | ProcessingRecipe]:
        """Read, load the recipe's own plugins, and validate. :attr:`recipe_code` then
        lists the code the recipe (with its overrides) made this process run.
        ``processing=True`` also accepts a processing-only recipe (``[[process]]`` alone)."""
        from runner._recipe.source import read_recipe
        from runner._recipe.validate import validate

        self.recipe_code = []
        source = read_recipe(path, overrides, collect=True)
        plugins = source.data.get("plugins", [])
        if isinstance(plugins, list):
            # A .py file is relative to the recipe file that lists it (an included one's own directory).
            specs = [
                str(source.base_dir(("plugins", i)) / p) if isinstance(p, str) and p.endswith(".py") else str(p)
                for i, p in enumerate(plugins)
            ]
            self.recipe_code = [_shown(spec) for spec in specs if not spec.startswith("no:")]
            self.add_local_plugins(specs)
        manager = self.plugins
        return source, validate(source, manager.registry, manager.failures, processing=processing)


def _shown(spec: str) -> str:
    """A local plugin spec as the user should see it: a file relative to the working directory."""
    import os

    if not spec.endswith(".py"):
        return spec
    relative = os.path.relpath(spec)
    return spec if relative.startswith("..") else relative
