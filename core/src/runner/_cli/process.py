"""``runner process RECIPE [--analyze]``: run a recipe's ``[[process]]`` steps alone."""

from __future__ import annotations

import json

import click

from runner._cli.common import recipe_options, recipe_path
from runner._cli.state import AppState
from runner._contract.errors import RunnerError


@click.command("process")
@recipe_path
@recipe_options
@click.option(
    "--analyze", is_flag=True, help="Run each processor's analyze() (or reuse the cached result) and show it."
)
@click.pass_context
def process_command(
    ctx: click.Context, recipe: str, overrides: tuple[str, ...], local_plugins: tuple[str, ...], analyze: bool
) -> None:
    """Run RECIPE's [[process]] steps through the cache (a re-run does only what changed).

    RECIPE may be a training recipe or hold [[process]] steps alone (and plugins).

    Under torchrun-style launches (RANK/WORLD_SIZE or NODE_RANK/LOCAL_RANK set) every rank
    processes its share of the shards and the primary merges; every node must share the
    cache directory (checked: ranks wait for node 0's marker in it).
    """
    from runner._processing import DistArgs, run_steps

    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    _, validated = state.load_recipe(recipe, overrides, processing=True)
    if not validated.process:
        raise RunnerError(f"{recipe}: no [[process]] steps to run")
    dist = DistArgs.from_env()
    results = run_steps(validated, state.plugins, dist=dist, analyze=analyze, report=click.echo)
    if analyze and dist.is_primary:
        for result in results:
            if result.analysis is None:
                click.echo(f"analysis of {result.output!r}: processor {result.name!r} defines no analyze()")
            else:
                click.echo(f"analysis of {result.output!r}:")
                click.echo(json.dumps(result.analysis, indent=2, sort_keys=True, default=str))
