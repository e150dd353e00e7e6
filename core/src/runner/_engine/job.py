"""A picklable description of one run, handed to every worker process by the backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import attrs

from runner._contract.recipe import Recipe
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager


class WorkerJob:
    """What a job handed to worker processes shares: its plugin manager, created on first
    use in each process and dropped when the job is pickled (a new process loads plugins
    again from entry points plus ``local_plugins``)."""

    local_plugins: tuple[str, ...]
    plugins: PluginManager | None

    def plugin_manager(self) -> PluginManager:
        """The manager of this process (created and loaded on first use in a new process)."""
        if self.plugins is None:
            self.plugins = PluginManager(local_plugins=self.local_plugins).load()
        return self.plugins

    def plugin_infos(self) -> list[PluginInfo]:
        """The plugins this process loads for the job (part of :class:`runner.Job`)."""
        return self.plugin_manager().plugins()

    def __getstate__(self) -> dict[str, Any]:
        state = {field.name: getattr(self, field.name) for field in attrs.fields(cast(Any, type(self)))}
        state["plugins"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


@attrs.define(eq=False, getstate_setstate=False)  # WorkerJob's: the manager is dropped
class Job(WorkerJob):
    """What a worker needs to train its share of ``recipe``.

    In-process backends reuse ``plugins``; a backend that starts new processes pickles the
    job, which drops the manager, and each worker loads plugins again (entry points plus
    ``local_plugins``).
    """

    recipe: Recipe
    run_dir: Path
    local_plugins: tuple[str, ...] = ()
    resume: str | bool = False
    allow_recipe_change: bool = False
    show_progress: bool = True
    plugins: PluginManager | None = None
    restart: int = 0
    """How many times the workers were restarted after a failure (torch elastic's
    ``TORCHELASTIC_RESTART_COUNT``). Above 0, a recipe with a ``[checkpoint]`` table
    continues from the newest checkpoint in ``run_dir``; otherwise the run starts over."""
