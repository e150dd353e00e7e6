"""``runner explain RECIPE``: components, their providers, value sources and hook order."""

from __future__ import annotations

import json

import click

from runner._cli.common import recipe_options, recipe_path
from runner._cli.state import AppState


@click.command("explain")
@recipe_path
@recipe_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def explain_command(
    ctx: click.Context, recipe: str, overrides: tuple[str, ...], local_plugins: tuple[str, ...], as_json: bool
) -> None:
    """Show what RECIPE resolves to and where each part comes from.

    For every component: the plugin and version providing it, each parameter's resolved
    value and its source (default, recipe file:line, or -o override). Then every hook's
    implementations in call order (wrappers, tryfirst, plain, trylast), including the
    recipe's callback objects. Never imports torch.
    """
    from runner._cli.tools import explain

    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    source, validated = state.load_recipe(recipe, overrides)
    components = explain.explain_components(source, validated, state.plugins)
    hooks, notes = explain.explain_hooks(validated, state.plugins)
    if as_json:
        data = explain.as_json(components, hooks, notes, state.recipe_code, source.files, source.notes)
        click.echo(json.dumps(data, indent=2))
    else:
        text = explain.render_text(recipe, components, hooks, notes, state.recipe_code, source.files, source.notes)
        click.echo(text, nl=False)
