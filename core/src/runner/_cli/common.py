"""State and options shared by the core's commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:  # imported where used: `runner --help` needs none of these
    from pathlib import Path

    from click.shell_completion import CompletionItem


F = TypeVar("F", bound=Callable[..., Any])


# Completion imports click.shell_completion and runner._recipe: only when a shell asks.
def _complete_override(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_override

    return complete_override(ctx, param, incomplete)


def _complete_recipe(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from runner._cli.complete import complete_recipe

    return complete_recipe(ctx, param, incomplete)


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


def default_run_dir(name: str, root: Path | None = None) -> Path:
    """``runs/<name>``, or ``runs/<name>-N`` when that already holds a run (never reuse one)."""
    from pathlib import Path  # not at module level: `runner --help` does not need pathlib

    root = Path("runs") if root is None else root
    candidate = root / name
    index = 1
    while candidate.exists() and any(candidate.iterdir()):
        candidate = root / f"{name}-{index}"
        index += 1
    return candidate
