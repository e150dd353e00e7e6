"""The ``runner`` command. Subcommands, the core's included, come from plugins through
``register_commands`` and are imported only when invoked; torch is never imported here.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from runner._cli.state import AppState
from runner._contract.errors import RunnerError
from runner._version import __version__


def _state(ctx: click.Context) -> AppState:
    """The invocation's state, with the group's ``-p`` options applied: click resolves the
    subcommand (which loads plugins) before the group callback runs."""
    state = AppState.of(ctx)
    state.add_local_plugins(ctx.params.get("local_plugins", ()))
    return state


class PluginCommands(click.Group):
    """A click group whose commands are registered by plugins (lazily imported)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        state = _state(ctx)
        if args[:2] == ["plugins", "doctor"]:
            state.announce = False  # the doctor reports the plugins' warnings as its problems
        # A command's own `-p no:NAME` must apply before plugins load to find the command:
        # a disabled plugin is never imported, and its warnings are not printed.
        state.add_local_plugins(_disabling_specs(args[1:]))
        return super().resolve_command(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return _state(ctx).plugins.registry.command_names()

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        registry = _state(ctx).plugins.registry
        clash = registry.command_clash(cmd_name)
        if clash is not None:  # two plugins registered it: run neither
            raise RunnerError(clash)
        entry = registry.commands.get(cmd_name)
        if entry is None:
            return None
        try:
            command = entry.load()
        except Exception as exc:
            raise RunnerError(
                f"command {cmd_name!r} from plugin {entry.plugin} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(command, click.Command):
            raise RunnerError(f"command {cmd_name!r} from plugin {entry.plugin} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Show help text from registration, so --help imports no command module.
        registry = _state(ctx).plugins.registry
        commands = registry.commands
        rows = [
            (name, commands[name].help if name in commands else "(unusable: two plugins register it, see above)")
            for name in registry.command_names()
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _disabling_specs(args: list[str]) -> list[str]:
    """The ``no:NAME`` values of ``-p``/``--plugin`` options among a command's arguments."""
    specs = []
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-p", "--plugin") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--plugin="):
            value = arg.partition("=")[2]
        elif arg.startswith("-p") and not arg.startswith("--"):
            value = arg[2:]
        else:
            continue
        if value.startswith("no:"):
            specs.append(value)
    return specs


@click.group(cls=PluginCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="runner", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option(
    "-p",
    "--plugin",
    "local_plugins",
    multiple=True,
    metavar="MODULE_OR_FILE",
    is_eager=True,  # before --help, which lists the plugins' commands
    help="Load a local plugin (module name or .py file); 'no:NAME' disables one. Repeatable.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, local_plugins: tuple[str, ...]) -> None:
    """Declarative PyTorch training from TOML recipes, extended by plugins.

    \b
    Start here:
      runner recipe check recipes/digits.toml
      runner run recipes/digits.toml
      runner plugins
    """
    state = AppState.of(ctx)
    state.debug = debug
    state.add_local_plugins(local_plugins)


def _print_traceback() -> None:
    import traceback

    traceback.print_exc()


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: user errors print one line per problem and exit 2."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    state = AppState()
    try:
        return cli.main(args=argv, prog_name="runner", obj=state, standalone_mode=False)
    except RunnerError as exc:
        if debug or state.debug:
            _print_traceback()
        for line in exc.lines():
            click.echo(f"error: {line}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # click's form of KeyboardInterrupt (and of EOF at a prompt)
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # Not a user error we anticipated: name the plugin whose code raised, if any.
        if debug or state.debug:
            _print_traceback()
        culprit = _blame(exc, state)
        if culprit is not None:
            click.echo(f"error: {culprit}", err=True)
            sys.exit(2)
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True
        )
        sys.exit(1)


def _blame(exc: Exception, state: AppState) -> str | None:
    from runner._cli.tools.blame import blame

    try:
        return blame(exc, state.plugins) if state.has_plugins else None
    except Exception:  # attribution is best effort; never mask the original error
        return None
