"""``runner new-plugin NAME``: scaffold a plugin distribution."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write it (default: ./runner-NAME). Must be new or empty.",
)
def new_plugin_command(name: str, directory: Path | None) -> None:
    """Create a ready-to-publish plugin distribution named runner-NAME.

    It registers a dataset and a callback through hooks (torch-free entry module, lazy
    factories, attrs parameters) and comes with tests using the runner_tester fixture,
    a README, a CHANGELOG and an example recipe. Then: pip install -e 'DIR[test]' && pytest DIR.
    """
    from runner._cli.tools.scaffold import write_plugin

    target, names, files = write_plugin(name, directory)
    click.echo(f"created {names.dist} in {target}:")
    for path in files:
        click.echo(f"  {path}")
    click.echo(f"registers dataset {names.dataset!r} and callback {names.callback!r}; next:")
    click.echo(f"  pip install -e '{target}[test]'")
    click.echo(f"  pytest {target}")
    click.echo(f"  runner run {target / 'examples' / (names.entry + '.toml')}")
