"""``runner plugins``: what is installed, what each plugin provides, what failed."""

from __future__ import annotations

import json
from typing import Any

import click

from runner._cli.state import AppState
from runner._contract.errors import RunnerError
from runner._plugins.manager import PluginManager


def describe_plugins(plugins: PluginManager) -> dict[str, Any]:
    """JSON-ready description of every plugin: distribution, version, hooks, components;
    the plugins that failed to load, and the warnings (misspelt hooks, name clashes...)."""
    registry = plugins.registry
    rows = []
    for info in plugins.plugins():
        components: dict[str, list[str]] = {}
        for component in registry.by_plugin(info):
            components.setdefault(component.kind, []).append(component.name)
        rows.append(
            {
                "name": info.name,
                "distribution": info.dist,
                "version": info.version,
                "hooks": plugins.hooks_of(info),
                "components": {kind: sorted(names) for kind, names in sorted(components.items())},
                "commands": sorted(
                    name
                    for name in registry.command_names()
                    if any(entry.plugin == info for entry in registry.command_entries(name))
                ),
            }
        )
    failures = [
        {"name": f.plugin.name, "distribution": f.plugin.dist, "version": f.plugin.version, "error": f.error}
        for f in plugins.failures
    ]
    return {"plugins": rows, "failures": failures, "warnings": plugins.warnings()}


@click.group("plugins", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, the components and hooks each provides, load errors and
    warnings (misspelt hook names, two plugins registering one name).

    'runner plugins doctor' checks them.
    """
    if ctx.invoked_subcommand is not None:
        return
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


@plugins_command.command("doctor")
@click.pass_context
def doctor_command(ctx: click.Context) -> None:
    """Check every installed plugin: import time and heavy imports (torch...), hook names, name
    clashes, component schemas, and the runner-core and contract version ranges it declares.
    One line per problem; exit status 2 if any. Components registered in a deprecated form
    are listed as warnings.
    """
    from runner._cli.tools.doctor import diagnose

    report = diagnose(AppState.of(ctx).plugins)
    names = ", ".join(f"{info.dist} {info.version}" for info in report.checked)
    click.echo(f"checked {len(report.checked)} plugins: {names}")
    if report.import_seconds:
        slowest = sorted(report.import_seconds.items(), key=lambda item: -item[1])
        click.echo("import time: " + ", ".join(f"{info} {_duration(seconds)}" for info, seconds in slowest))
    for line in report.deprecations:
        click.echo(f"warning: {line}", err=True)
    if report.problems:
        raise _DoctorProblems(report.problems)
    click.echo("no problems found")


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


class _DoctorProblems(RunnerError):
    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        noun = "problem" if len(self._lines) == 1 else "problems"
        return [*self._lines, f"plugins doctor: {len(self._lines)} {noun}"]
