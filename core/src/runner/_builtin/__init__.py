"""The core's own components and commands, registered through the same hooks as any
plugin (lazily: each is a ``module:attr`` reference to its declaration, in
:mod:`runner._builtin.components`, :mod:`runner._samplers.builtin`,
:mod:`runner._sweep.builtin` or :mod:`runner._cli`)."""

from __future__ import annotations

from runner._contract.registration import RegisterCommand, RegisterComponent
from runner.hookspecs import hookimpl

_COMPONENTS = "runner._builtin.components"


@hookimpl
def register_backends(register: RegisterComponent) -> None:
    register("single", f"{_COMPONENTS}:Single")


@hookimpl
def register_samplers(register: RegisterComponent) -> None:
    register("random", "runner._samplers.builtin:Random")
    register("sequential", "runner._samplers.builtin:Sequential")


@hookimpl
def register_loggers(register: RegisterComponent) -> None:
    register("jsonl", f"{_COMPONENTS}:Jsonl")
    register("csv", f"{_COMPONENTS}:Csv")


@hookimpl
def register_executors(register: RegisterComponent) -> None:
    register("process", f"{_COMPONENTS}:Process")
    register("thread", f"{_COMPONENTS}:Thread")
    register("inline", f"{_COMPONENTS}:Inline")


@hookimpl
def register_sweepers(register: RegisterComponent) -> None:
    register("grid", "runner._sweep.builtin:Grid")
    register("random", "runner._sweep.builtin:Random")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    register("run", "runner._cli.run:run_command", help="Train a recipe.")
    register(
        "resume", "runner._cli.run:resume_command", help="Continue a run from its run directory (recipe, plugins)."
    )
    register("recipe", "runner._cli.recipe:recipe_group", help="Check and show recipes.")
    register("plugins", "runner._cli.plugins:plugins_command", help="List installed plugins and their components.")
    register("process", "runner._cli.process:process_command", help="Run a recipe's [[process]] steps (cached).")
    register("runs", "runner._cli.runs:runs_group", help="List runs (status, steps, best metric) or compare them.")
    register("sweep", "runner._cli.sweep:sweep_command", help="Run a recipe's [sweep]: many runs, one search.")
    register("plot", "runner._cli.plot:plot_command", help="Plot train/val curves of runs to a PNG (matplotlib).")
    register(
        "explain", "runner._cli.explain:explain_command", help="Show a recipe's components, value sources and hooks."
    )
    register("new-plugin", "runner._cli.scaffold:new_plugin_command", help="Create a new plugin distribution.")
    register("predict", "runner._cli.predict:predict_command", help="Predict with a run's trained model.")
    register(
        "export", "runner._cli.export:export_command", help="Export a run's model (ONNX, torch.export, TorchScript)."
    )
