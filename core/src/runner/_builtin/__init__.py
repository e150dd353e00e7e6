"""The core's own components, registered through the same hooks as any plugin (lazily:
factories and parameter classes are ``module:attr`` references)."""

from __future__ import annotations

from runner._contract.registration import RegisterCommand, RegisterComponent
from runner.hookspecs import hookimpl


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    register(
        "single",
        "runner._builtin.single:SingleDevice",
        params="runner._builtin.params:SingleDeviceParams",
        doc="One process on one device (CPU or one GPU).",
    )


@hookimpl
def register_samplers(register: RegisterComponent) -> None:
    register(
        "random",
        "runner._builtin.samplers:random_sampler",
        params="runner._builtin.params:SamplerParams",
        doc="Resumable shuffled order, reseeded every epoch from (seed, epoch).",
    )
    register(
        "sequential",
        "runner._builtin.samplers:sequential_sampler",
        params="runner._builtin.params:SamplerParams",
        doc="Resumable in-order sampler.",
    )


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    register(
        "jsonl",
        "runner._builtin.loggers:JsonlLogger",
        params="runner._builtin.params:JsonlLoggerParams",
        doc="Another JSON-lines file of records, optionally timestamped (metrics.jsonl is always written).",
    )
    register(
        "csv",
        "runner._builtin.loggers:CsvLogger",
        params="runner._builtin.params:CsvLoggerParams",
        doc="Records as CSV rows; the header widens when new columns appear.",
    )


@hookimpl
def register_executors(register: RegisterComponent) -> None:
    register(
        "process",
        "runner._processing.executors:ProcessExecutor",
        doc="process_count worker processes, each with a share of the shards (fork where available).",
    )
    register("thread", "runner._processing.executors:ThreadExecutor", doc="process_count threads.")
    register("inline", "runner._processing.executors:InlineExecutor", doc="One shard after the other, in-process.")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    register("run", "runner._cli.run:run_command", help="Train a recipe.")
    register(
        "resume", "runner._cli.run:resume_command", help="Continue a run from its run directory (recipe, plugins)."
    )
    register("recipe", "runner._cli.recipe:recipe_group", help="Check and show recipes.")
    register("plugins", "runner._cli.plugins:plugins_command", help="List installed plugins and their components.")
    register("process", "runner._cli.process:process_command", help="Run a recipe's [[process]] steps (cached).")
    register("runs", "runner._cli.runs:runs_group", help="List runs (status, steps, best metric) or compare two.")
    register("plot", "runner._cli.plot:plot_command", help="Plot train/val curves of runs to a PNG (matplotlib).")
    register(
        "explain", "runner._cli.explain:explain_command", help="Show a recipe's components, value sources and hooks."
    )
    register("new-plugin", "runner._cli.scaffold:new_plugin_command", help="Create a new plugin distribution.")
