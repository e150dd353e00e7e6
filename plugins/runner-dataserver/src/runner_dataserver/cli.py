"""``runner serve-data RECIPE --split train --bind HOST:PORT``: serve a split to remote trainers."""

from __future__ import annotations

import os

import click

from runner import AppState, RunnerError, recipe_options, recipe_path
from runner_dataserver.handshake import HANDSHAKE_TIMEOUT


@click.command("serve-data")
@recipe_path
@recipe_options
@click.option("--split", "split_name", default="train", show_default=True, help="train, val.KEY or test.KEY.")
@click.option("--bind", default="127.0.0.1:0", show_default=True, help="HOST:PORT to listen on.")
@click.option("--token-env", default="RUNNER_DATASERVER_TOKEN", show_default=True, help="Variable holding the token.")
@click.option("--rank", default=0, show_default=True, help="Rank whose seed/sharding the datasets use.")
@click.option(
    "--handshake-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=HANDSHAKE_TIMEOUT,
    show_default=True,
    help="Seconds a client has to authenticate before it is disconnected.",
)
@click.pass_context
def serve_data(
    ctx: click.Context,
    recipe: str,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    split_name: str,
    bind: str,
    token_env: str,
    rank: int,
    handshake_timeout: float,
) -> None:
    """Build RECIPE's split dataset here and serve its batches to clients that know the token."""
    from runner_dataserver.loader import _parse_address
    from runner_dataserver.server import ServerSpec, portable_registry, serve_remote

    token = os.environ.get(token_env)
    if not token:
        raise RunnerError(f"set ${token_env} to the token clients will present")
    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    _, validated = state.load_recipe(recipe, overrides)
    if split_name == "train":
        split = validated.train
    else:
        group, _, key = split_name.partition(".")
        split = {"val": validated.val, "test": validated.test}.get(group, {}).get(key)
    if split is None:
        raise RunnerError(f"{recipe}: no split {split_name!r} (train, val.KEY or test.KEY)")
    spec = ServerSpec(
        split=split,
        registry=portable_registry(state.plugins.registry),
        recipe=validated,
        seed=validated.run.seed,
        rank=rank,
    )
    try:
        serve_remote(
            _parse_address(bind),
            token.encode(),
            spec,
            report=lambda line: click.echo(line, err=True),
            handshake_timeout=handshake_timeout,
        )
    except KeyboardInterrupt:
        click.echo("stopped", err=True)
