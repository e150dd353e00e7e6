"""runner: a declarative plugin framework for PyTorch training.

Plugins implement hooks from :mod:`runner.hookspecs`, marked with :data:`hookimpl`, and
are discovered through the ``runner`` entry-point group. This module never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner._version import __version__
from runner.errors import DataError, PluginError, RecipeError, RunnerError
from runner.hookspecs import hookimpl

if TYPE_CHECKING:
    from runner.engine.context import BuildContext, RunContext
    from runner.protocols import Backend, Checkpointer, Logger
    from runner.schema.fields import at_least, param
    from runner.stage import Stage
    from runner.task import StepInfo, StepOutput, Task

__all__ = [
    "Backend",
    "BuildContext",
    "Checkpointer",
    "DataError",
    "Logger",
    "PluginError",
    "RecipeError",
    "RunContext",
    "RunnerError",
    "Stage",
    "StepInfo",
    "StepOutput",
    "Task",
    "__version__",
    "at_least",
    "hookimpl",
    "param",
]

# Imported on first access: plugin entry modules import ``runner`` for ``hookimpl`` on
# every CLI call (``runner --help``), and need none of these.
_LAZY = {
    "BuildContext": "runner.engine.context",
    "RunContext": "runner.engine.context",
    "Backend": "runner.protocols",
    "Checkpointer": "runner.protocols",
    "Logger": "runner.protocols",
    "at_least": "runner.schema.fields",
    "param": "runner.schema.fields",
    "Stage": "runner.stage",
    "StepInfo": "runner.task",
    "StepOutput": "runner.task",
    "Task": "runner.task",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later accesses skip this function
        return value
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
