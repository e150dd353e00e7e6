"""runner: a declarative plugin framework for PyTorch training.

This module is the whole public API (with :mod:`runner.hookspecs` and
:mod:`runner.testing`): everything a plugin may use is importable from here, and every
module whose name starts with an underscore (``runner._engine``, ``runner._data``, ...) is
private and may change in any release. Plugins implement hooks from
:mod:`runner.hookspecs`, marked with :data:`hookimpl`, and are discovered through the
``runner`` entry-point group.

Scripts and notebooks train and use models with :func:`fit` and :func:`load`.

Importing ``runner`` never imports torch: names are resolved on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner._contract.errors import DataError, PluginError, RecipeError, RunnerError
from runner._version import CONTRACT_VERSION, __version__
from runner.hookspecs import hookimpl

if TYPE_CHECKING:
    from runner._builtin.single import SingleDevice
    from runner._cli.common import recipe_options, recipe_path
    from runner._cli.state import AppState
    from runner._compat.torchvision import import_torchvision
    from runner._contract.backend import Backend, Job
    from runner._contract.batch import INPUT_KEYS, TARGET_KEYS, Batch, batch_fields, batch_inputs, forward_kwargs
    from runner._contract.context import BuildContext, RunContext
    from runner._contract.declaration import check, component
    from runner._contract.errors import Problem
    from runner._contract.params import REQUIRED, at_least, between, one_of_patterns, param
    from runner._contract.protocols import (
        Checkpointer,
        Collate,
        Executor,
        Loader,
        Logger,
        Processor,
        Sampler,
        Sweeper,
        Transform,
    )
    from runner._contract.recipe import ComponentConfig, LoaderConfig, ProcessConfig, Recipe, RunConfig, SplitConfig
    from runner._contract.registration import PluginInfo, RegisterCommand, RegisterComponent
    from runner._contract.stage import Stage
    from runner._contract.suggest import did_you_mean
    from runner._contract.sweep import Axis
    from runner._contract.task import StepInfo, StepOutput, Task
    from runner._data.build import apply_sample_transforms, build_dataset, build_transforms, tensors_of
    from runner._data.loader import Loader as MapLoader
    from runner._data.loader import known_length
    from runner._data.module import DataModule
    from runner._data.transforms import Pipeline, Prefetch, ShuffleBuffer, apply_batch_transforms
    from runner._engine.buffered import BufferedLogger, flatten, metric_items
    from runner._engine.rundir import METRICS_FILE, SUMMARY_FILE
    from runner._inference.api import FitResult, LoadedRun, fit, load
    from runner._plugins.registry import Component, Registry
    from runner._processing import load_output, load_tensor_file, output_shards
    from runner._processing.cache import Cache
    from runner._processing.shards import Shard, process_shard
    from runner._recipe.render import render as render_toml
    from runner._samplers.index import BatchIndexSampler, IndexSampler, ResumableSampler, epoch_generator, shard
    from runner._samplers.protocol import can_seek
    from runner._sweep.ledger import Trial
    from runner._sweep.sweep import Sweep

#: Where each public name is defined (private modules), imported on first access: plugin
#: entry modules import ``runner`` for ``hookimpl`` on every CLI call (``runner --help``),
#: and need none of these.
_LAZY: dict[str, str] = {
    # the training contract
    "Stage": "runner._contract.stage",
    "Task": "runner._contract.task",
    "StepInfo": "runner._contract.task",
    "StepOutput": "runner._contract.task",
    "BuildContext": "runner._contract.context",
    "RunContext": "runner._contract.context",
    "Problem": "runner._contract.errors",
    # the batch convention (collates produce, tasks consume)
    "Batch": "runner._contract.batch",
    "batch_fields": "runner._contract.batch",
    "batch_inputs": "runner._contract.batch",
    "forward_kwargs": "runner._contract.batch",
    "INPUT_KEYS": "runner._contract.batch",
    "TARGET_KEYS": "runner._contract.batch",
    # component interfaces
    "Backend": "runner._contract.backend",
    "Checkpointer": "runner._contract.protocols",
    "Collate": "runner._contract.protocols",
    "Executor": "runner._contract.protocols",
    "Job": "runner._contract.backend",
    "Loader": "runner._contract.protocols",
    "Logger": "runner._contract.protocols",
    "Processor": "runner._contract.protocols",
    "Sampler": "runner._contract.protocols",
    "Transform": "runner._contract.protocols",
    # declaring components
    "component": "runner._contract.declaration",
    "check": "runner._contract.declaration",
    "param": "runner._contract.params",
    "at_least": "runner._contract.params",
    "between": "runner._contract.params",
    "one_of_patterns": "runner._contract.params",
    "REQUIRED": "runner._contract.params",
    "PluginInfo": "runner._contract.registration",
    "RegisterComponent": "runner._contract.registration",
    "RegisterCommand": "runner._contract.registration",
    "Registry": "runner._plugins.registry",
    "Component": "runner._plugins.registry",
    "did_you_mean": "runner._contract.suggest",
    # the recipe as the engine sees it
    "Recipe": "runner._contract.recipe",
    "RunConfig": "runner._contract.recipe",
    "LoaderConfig": "runner._contract.recipe",
    "SplitConfig": "runner._contract.recipe",
    "ComponentConfig": "runner._contract.recipe",
    "ProcessConfig": "runner._contract.recipe",
    "render_toml": "runner._recipe.render",
    # backends
    "SingleDevice": "runner._builtin.single",
    # data building blocks
    "ResumableSampler": "runner._samplers.index",
    "IndexSampler": "runner._samplers.index",
    "BatchIndexSampler": "runner._samplers.index",
    "epoch_generator": "runner._samplers.index",
    "shard": "runner._samplers.index",
    "can_seek": "runner._samplers.protocol",
    "MapLoader": "runner._data.loader",
    "known_length": "runner._data.loader",
    "Pipeline": "runner._data.transforms",
    "Prefetch": "runner._data.transforms",
    "ShuffleBuffer": "runner._data.transforms",
    "apply_batch_transforms": "runner._data.transforms",
    "build_dataset": "runner._data.build",
    "build_transforms": "runner._data.build",
    "apply_sample_transforms": "runner._data.build",
    "tensors_of": "runner._data.build",
    "DataModule": "runner._data.module",
    # processing
    "Shard": "runner._processing.shards",
    "process_shard": "runner._processing.shards",
    "Cache": "runner._processing.cache",
    "load_output": "runner._processing",
    "load_tensor_file": "runner._processing",
    "output_shards": "runner._processing",
    # loggers and run directories
    "BufferedLogger": "runner._engine.buffered",
    "flatten": "runner._engine.buffered",
    "metric_items": "runner._engine.buffered",
    "METRICS_FILE": "runner._engine.rundir",
    # sweeps (register_sweepers)
    "Sweep": "runner._sweep.sweep",
    "Trial": "runner._sweep.ledger",
    "Axis": "runner._contract.sweep",
    "Sweeper": "runner._contract.protocols",
    "SUMMARY_FILE": "runner._engine.rundir",
    # after training: the Python API for scripts and notebooks
    "fit": "runner._inference.api",
    "load": "runner._inference.api",
    "FitResult": "runner._inference.api",
    "LoadedRun": "runner._inference.api",
    # third-party workarounds shared by plugins
    "import_torchvision": "runner._compat.torchvision",
    # plugin commands
    "AppState": "runner._cli.state",
    "recipe_options": "runner._cli.common",
    "recipe_path": "runner._cli.common",
}
_RENAMED = {"render_toml": "render", "MapLoader": "Loader"}

__all__ = [
    "CONTRACT_VERSION",
    "INPUT_KEYS",
    "METRICS_FILE",
    "REQUIRED",
    "SUMMARY_FILE",
    "TARGET_KEYS",
    "AppState",
    "Axis",
    "Backend",
    "Batch",
    "BatchIndexSampler",
    "BufferedLogger",
    "BuildContext",
    "Cache",
    "Checkpointer",
    "Collate",
    "Component",
    "ComponentConfig",
    "DataError",
    "DataModule",
    "Executor",
    "FitResult",
    "IndexSampler",
    "Job",
    "LoadedRun",
    "Loader",
    "LoaderConfig",
    "Logger",
    "MapLoader",
    "Pipeline",
    "PluginError",
    "PluginInfo",
    "Prefetch",
    "Problem",
    "ProcessConfig",
    "Processor",
    "Recipe",
    "RecipeError",
    "RegisterCommand",
    "RegisterComponent",
    "Registry",
    "ResumableSampler",
    "RunConfig",
    "RunContext",
    "RunnerError",
    "Sampler",
    "Shard",
    "ShuffleBuffer",
    "SingleDevice",
    "SplitConfig",
    "Stage",
    "StepInfo",
    "StepOutput",
    "Sweep",
    "Sweeper",
    "Task",
    "Transform",
    "Trial",
    "__version__",
    "apply_batch_transforms",
    "apply_sample_transforms",
    "at_least",
    "batch_fields",
    "batch_inputs",
    "between",
    "build_dataset",
    "build_transforms",
    "can_seek",
    "check",
    "component",
    "did_you_mean",
    "epoch_generator",
    "fit",
    "flatten",
    "forward_kwargs",
    "hookimpl",
    "import_torchvision",
    "known_length",
    "load",
    "load_output",
    "load_tensor_file",
    "metric_items",
    "one_of_patterns",
    "output_shards",
    "param",
    "process_shard",
    "recipe_options",
    "recipe_path",
    "render_toml",
    "shard",
    "tensors_of",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), _RENAMED.get(name, name))
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
