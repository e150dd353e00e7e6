"""``runner plugins``: what is installed, what each plugin provides, what failed."""

from __future__ import annotations

import json
from typing import Any

import click

from runner.cli.common import AppState
from runner.errors import RunnerError
from runner.plugins import PluginManager


def describe_plugins(plugins: PluginManager) -> dict[str, Any]:
    """JSON-ready description of every plugin: distribution, version, hooks, components."""
    registry = plugins.registry
    rows = []
    for info in plugins.plugins():
        components: dict[str, list[str]] = {}
        for component in registry.by_plugin(info.name):
            components.setdefault(component.kind, []).append(component.name)
        rows.append(
            {
                "name": info.name,
                "distribution": info.dist,
                "version": info.version,
                "hooks": plugins.hooks_of(info.name),
                "components": {kind: sorted(names) for kind, names in sorted(components.items())},
                "commands": sorted(e.name for e in registry.commands.values() if e.plugin.name == info.name),
            }
        )
    failures = [
        {"name": f.plugin.name, "distribution": f.plugin.dist, "version": f.plugin.version, "error": f.error}
        for f in plugins.failures
    ]
    return {"plugins": rows, "failures": failures}


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, the components and hooks each provides, and load errors."""
    plugins = AppState.of(ctx).plugins
    try:
        report = describe_plugins(plugins)
    except RunnerError:
        raise
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for row in report["plugins"]:
        click.echo(f"{row['distribution']} {row['version']} ({row['name']})")
        for kind, names in row["components"].items():
            click.echo(f"  {kind}s: {', '.join(names)}")
        if row["commands"]:
            click.echo(f"  commands: {', '.join(row['commands'])}")
        click.echo(f"  hooks: {', '.join(row['hooks'])}")
    for failure in report["failures"]:
        click.echo(
            f"plugin {failure['distribution']} {failure['version']} failed to load: {failure['error']}", err=True
        )
