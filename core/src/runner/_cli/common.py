"""State and options shared by the core's commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # imported where used: `runner --help` needs none of these
    from click.shell_completion import CompletionItem


F = TypeVar("F", bound=Callable[..., Any])


# Completion imports click.shell_completion and runner._recipe: only when a shell asks.
def _complete_override(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_override

    return complete_override(ctx, param, incomplete)


def _complete_recipe(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_recipe

    return complete_recipe(ctx, param, incomplete)


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
