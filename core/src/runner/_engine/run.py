"""Run a validated recipe: pick its backend, prepare data once, train in every worker, summarise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from runner._contract.backend import Backend
from runner._contract.errors import PluginError
from runner._contract.protocols import protocol_problems
from runner._contract.recipe import Recipe
from runner._engine.engine import build_and_train, seed_everything
from runner._engine.job import Job
from runner._engine.rundir import RECIPE_FILE, SUMMARY_FILE
from runner._plugins.manager import PluginManager

__all__ = ["RunResult", "execute", "seed_everything", "train_worker"]


@attrs.frozen
class RunResult:
    """What a finished run reports."""

    run_dir: Path
    global_step: int
    epochs: int
    seconds: float
    metrics: dict[str, dict[str, float]]
    stop_reason: str = ""
    interrupted: str = ""
    """The signal that stopped the run (``"SIGINT"``/``"SIGTERM"``), or ``""``."""
    extras: dict[str, Any] = attrs.Factory(dict)
    """What plugins added with ``run.add_summary(key, value)``."""

    def summary(self, name: str) -> str:
        parts = [f"{name}: {self.global_step} steps, {self.epochs} epochs in {self.seconds:.1f}s"]
        for group, values in self.metrics.items():
            if group == "train":
                continue
            shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
            parts.append(f"{group} {shown}")
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return "; ".join(parts) + f" -> {self.run_dir}"


def build_backend(recipe: Recipe, plugins: PluginManager) -> Backend:
    component = plugins.registry.get("backend", recipe.backend.name)
    backend = component.build(recipe.backend.params)
    for problem in protocol_problems("backend", backend):
        raise PluginError(f"backend {recipe.backend.name!r} (plugin {component.plugin}) {problem}")
    return backend  # type: ignore[no-any-return]


def execute(
    recipe: Recipe,
    plugins: PluginManager,
    run_dir: Path,
    *,
    resume: str | bool = False,
    allow_recipe_change: bool = False,
    show_progress: bool = True,
    backend: Backend | None = None,
) -> RunResult:
    """Run ``recipe`` with its backend (which may start several processes); ``backend``
    is the one :func:`build_backend` made, when the caller needed it first."""
    backend = build_backend(recipe, plugins) if backend is None else backend
    if backend.is_primary:
        # First, the recipe: a run that stops at any point after this can be rerun or continued.
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RECIPE_FILE).write_text(render_resolved(recipe), encoding="utf-8")
        # [[process]] steps, then prepare_data hooks and the datamodule's prepare_data:
        # once, here, before the backend starts any rank or loader worker.
        from runner._data.module import prepare_primary

        prepare_primary(recipe, plugins, run_dir)
    job = Job(
        recipe=recipe,
        run_dir=run_dir,
        local_plugins=plugins.local_plugins,
        resume=resume,
        allow_recipe_change=allow_recipe_change,
        show_progress=show_progress,
        plugins=plugins,
    )
    return backend.launch(train_worker, job)


def render_resolved(recipe: Recipe) -> str:
    """The text of the run directory's ``recipe.toml``: the resolved recipe as TOML."""
    from runner._recipe.render import render

    return render(recipe.resolved)


def train_worker(job: Any, backend: Backend) -> RunResult:
    """Train ``job`` in this process with ``backend`` (the backend's view from this rank)."""
    run, outcome = build_and_train(job, backend)
    result = RunResult(
        run.run_dir,
        run.global_step,
        run.epoch + 1,
        outcome.seconds,
        {k: v for k, v in run.last_metrics.items()},
        run.stop_reason,
        run.interrupted,
        dict(run.added_summary),
    )
    if backend.is_primary:
        (run.run_dir / SUMMARY_FILE).write_text(
            json.dumps(attrs.asdict(result), default=str, indent=2) + "\n", encoding="utf-8"
        )
    return result
