"""``runner recipe check|show``: validate and print recipes without training."""

from __future__ import annotations

import click

from runner._cli.common import code_note, recipe_options, recipe_path
from runner._cli.complete import complete_recipe
from runner._cli.state import AppState
from runner._contract.errors import RecipeError, RunnerError


@click.group("recipe")
def recipe_group() -> None:
    """Check and show recipes (never imports torch)."""


@recipe_group.command("check")
@click.argument(
    "recipes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str), shell_complete=complete_recipe
)
@recipe_options
@click.pass_context
def check_command(
    ctx: click.Context, recipes: tuple[str, ...], overrides: tuple[str, ...], local_plugins: tuple[str, ...]
) -> None:
    """Validate each RECIPE; report every problem of every file."""
    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    problems: list[str] = []
    for path in recipes:
        try:
            state.load_recipe(path, overrides, processing=True)
        except RecipeError as exc:
            problems += [str(p) for p in exc.problems]
            continue
        except RunnerError as exc:
            problems.append(str(exc))
            continue
        finally:  # also for an invalid recipe: its plugins ran
            if state.recipe_code:
                click.echo(code_note(path, state.recipe_code))
        click.echo(f"{path}: ok")
    if problems:
        raise _Problems(problems)


class _Problems(RunnerError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        noun = "problem" if len(self._lines) == 1 else "problems"
        return [*self._lines, f"recipe invalid: {len(self._lines)} {noun}"]


@recipe_group.command("show")
@recipe_path
@recipe_options
@click.pass_context
def show_command(ctx: click.Context, recipe: str, overrides: tuple[str, ...], local_plugins: tuple[str, ...]) -> None:
    """Print RECIPE fully resolved (every default filled in) as TOML."""
    from runner._recipe.render import render

    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    source, validated = state.load_recipe(recipe, overrides, processing=True)
    for note in source.notes:  # stderr: stdout stays a recipe
        click.echo(f"note: {note}", err=True)
    click.echo(render(validated.resolved), nl=False)


@recipe_group.command("schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Write the schema to this file (default: print it).",
)
@click.pass_context
def schema_command(ctx: click.Context, output: str | None) -> None:
    """Print the JSON Schema of recipes, with every installed plugin's components.

    Point taplo / Even Better TOML at it to validate and complete recipes: put
    '#:schema ./recipe.schema.json' as a recipe's first line, or map it to recipe files
    in .taplo.toml. Plugins loaded with -p are included; a recipe's own plugins = [...] are not.
    """
    import json

    from runner._schema.export import recipe_schema

    text = json.dumps(recipe_schema(AppState.of(ctx).plugins.registry), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(f"wrote {output}", err=True)
