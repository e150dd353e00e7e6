"""Run a validated recipe: build every component, train, validate, test, summarise."""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from runner._contract.context import BuildContext, RunContext
from runner._contract.errors import RunnerError
from runner._contract.protocols import Backend
from runner._contract.recipe import Recipe
from runner._contract.stage import Stage
from runner._data.module import build_datamodule
from runner._engine.interrupt import graceful_interrupt
from runner._engine.job import Job
from runner._engine.loop import Trainer
from runner._engine.progress import Progress
from runner._engine.records import MetricsFile, Records
from runner._engine.rundir import METRICS_FILE, Heartbeat
from runner._plugins.manager import PluginManager


@attrs.frozen
class RunResult:
    """What a finished run reports."""

    run_dir: Path
    global_step: int
    epochs: int
    seconds: float
    metrics: dict[str, dict[str, float]]
    stop_reason: str = ""

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


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def build_backend(recipe: Recipe, plugins: PluginManager) -> Backend:
    backend = plugins.registry.get("backend", recipe.backend.name).build(recipe.backend.params)
    if not isinstance(backend, Backend):
        raise RunnerError(f"backend {recipe.backend.name!r} does not implement runner.Backend")
    return backend


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


def train_worker(job: Job, backend: Backend) -> RunResult:
    """Train ``job`` in this process with ``backend`` (the backend's view from this rank)."""
    recipe, run_dir, plugins = job.recipe, job.run_dir, job.plugin_manager()
    resume, show_progress = job.resume, job.show_progress
    started = time.perf_counter()
    cfg = recipe.run
    seed_everything(cfg.seed, cfg.deterministic)
    device = backend.device(cfg.device)
    if cfg.precision == "fp16" and device.type != "cuda":
        raise RunnerError("[run] precision = 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
    registry = plugins.registry
    ctx = BuildContext(
        recipe=recipe, seed=cfg.seed, run_dir=run_dir, device=device, rank=backend.rank, world_size=backend.world_size
    )
    run = RunContext(
        recipe=recipe,
        run_dir=run_dir,
        plugins=plugins,
        backend=backend,
        device=device,
        resume=resume,
        allow_recipe_change=job.allow_recipe_change,
    )
    on_cuda = device.type == "cuda"
    datamodule = build_datamodule(recipe, registry, ctx, on_cuda)  # [data.*] tables and/or [datamodule]
    run.extras["datamodule"] = datamodule
    for stage in (Stage.TRAIN, Stage.VAL, Stage.TEST):
        datamodule.setup(stage)
    run.train_loader = datamodule.train_dataloader()
    run.val_loaders.update(datamodule.val_dataloaders())
    run.test_loaders.update(datamodule.test_dataloaders())
    if run.train_loader is None:
        raise RunnerError("nothing to train on: add a [data.train] table")

    model = registry.get("model", recipe.model.name).build(recipe.model.params, ctx=ctx).to(device)
    run.model = backend.wrap_model(model)
    run.task = registry.get("task", recipe.task.name).build(recipe.task.params, ctx=ctx)
    _build_optimization(run, ctx)
    if cfg.precision == "fp16":
        run.scaler = torch.amp.GradScaler("cuda")

    callbacks = [(registry.get("callback", c.name).build(c.params, ctx=ctx), c) for c in recipe.callbacks]
    checkpointer = None
    if recipe.checkpoint is not None:
        component = registry.get("checkpointer", recipe.checkpoint.name)
        checkpointer = component.build(recipe.checkpoint.params, ctx=ctx, run_dir=run_dir)
        callbacks.append((checkpointer, recipe.checkpoint))
    # pluggy calls the last registered first: register in reverse so hooks run in recipe order.
    for index, (obj, config) in reversed(list(enumerate(callbacks))):
        info = registry.get(config.kind, config.name).plugin
        plugins.add_callback_object(obj, attrs.evolve(info, name=f"{config.kind}:{config.name}#{index}"))

    metrics_file: MetricsFile | None = None
    loggers: list[tuple[Any, Any]] = []
    heartbeat: Heartbeat | None = None
    if backend.is_primary:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.toml").write_text(render_resolved(recipe), encoding="utf-8")
        metrics_file = MetricsFile(run_dir / METRICS_FILE)
        for logger_config in recipe.loggers:
            component = registry.get("logger", logger_config.name)
            loggers.append((component.build(logger_config.params, ctx=ctx, run_dir=run_dir), component.plugin))
    records = Records(metrics_file, loggers)
    trainer = Trainer(run, records, Progress(0, enabled=False))
    run.extras["trainer"] = trainer
    run.extras["metrics_offset"] = lambda: metrics_file.tell() if metrics_file is not None else 0
    run.extras["truncate_metrics"] = lambda offset: metrics_file.truncate(offset) if metrics_file else None

    try:
        if backend.is_primary:  # `runner runs` tells running from crashed runs by it
            heartbeat = Heartbeat(run_dir).start()
        # Workers restarted after a failure (job.restart > 0, e.g. by torch's elastic
        # agent) continue from the newest checkpoint this run directory holds; without
        # one they start over, as the first attempt did.
        restored = job.restart > 0 and checkpointer is not None and checkpointer.restore(run, None)
        if resume and not restored:
            if checkpointer is None:
                raise RunnerError("--resume needs a [checkpoint] table in the recipe")
            if isinstance(resume, str) and not checkpointer.restore(run, resume):
                raise RunnerError(f"no valid checkpoint to resume from in {resume}")
            # --resume before any checkpoint (a first start, or a run killed before its
            # first save) starts from the beginning: one command line for start and restarts.
            if resume is True and not checkpointer.restore(run, None):
                if backend.is_primary:
                    print(f"no checkpoint in {run_dir} yet: starting from the beginning", file=sys.stderr, flush=True)
                run.extras["truncate_metrics"](0)  # an earlier attempt's records are written again
        elif job.restart > 0 and not restored:
            run.extras["truncate_metrics"](0)  # the failed attempt's records are written again
        backend.barrier()  # every rank has restored before any trains or saves
        trainer.progress = Progress(trainer.total_steps, enabled=show_progress and backend.is_primary)
        plugins.call("setup", run=run, stage=Stage.TRAIN)
        with graceful_interrupt(run) if recipe.checkpoint is None else contextlib.nullcontext():
            trainer.fit()
        # A plugin that stopped the run for an interruption (a checkpointer saving on
        # SIGTERM) sets extras["interrupted"]: the final validation and test are then
        # left to the resumed run instead of delaying the exit.
        # (The final validation already ran in Trainer.fit, before on_end_train.)
        interrupted = bool(run.extras.get("interrupted"))
        if not interrupted and cfg.test and run.test_loaders:
            plugins.call("setup", run=run, stage=Stage.TEST)
            trainer.test_all()
    finally:
        trainer.progress.close()
        try:
            plugins.call("teardown", run=run)
            datamodule.teardown()
        finally:
            records.close()
            for obj, _ in callbacks:
                plugins.remove_callback_object(obj)
            if heartbeat is not None:
                heartbeat.stop(sys.exc_info()[1])
    result = RunResult(
        run_dir,
        run.global_step,
        run.epoch + 1,
        time.perf_counter() - started,
        {k: v for k, v in run.last_metrics.items()},
        run.stop_reason,
    )
    if backend.is_primary:
        (run_dir / "summary.json").write_text(
            json.dumps(attrs.asdict(result), default=str, indent=2) + "\n", encoding="utf-8"
        )
    return result


def _build_optimization(run: RunContext, ctx: BuildContext) -> None:
    from runner._data.loader import known_length

    recipe, registry = run.recipe, run.plugins.registry
    batches = known_length(run.train_loader)
    if batches is None:  # a stream of unknown length: the run is measured in steps only
        if recipe.run.max_steps is None:
            raise RunnerError(
                "the train data has no known length (an iterable source without length = N), so "
                "run.epochs cannot be counted; set run.max_steps (the stream restarts when it ends), "
                "or give the source its length"
            )
        batches = recipe.run.max_steps * recipe.run.grad_accum
    steps_per_epoch = max(1, -(-batches // recipe.run.grad_accum))
    epochs = recipe.run.epochs or -(-(recipe.run.max_steps or 1) // steps_per_epoch)
    total_steps = recipe.run.max_steps or steps_per_epoch * epochs
    override = run.plugins.call(
        "get_optimizers_schedulers",
        run=run,
        model=run.model,
        estimated_global_steps_per_epoch=steps_per_epoch,
        epochs=epochs,
    )
    if override is not None:
        optimizers, schedulers = override
        run.optimizers, run.schedulers = list(optimizers), list(schedulers)
        return
    optimizer = registry.get("optimizer", recipe.optimizer.name).build(
        recipe.optimizer.params, ctx=ctx, model=run.model
    )
    run.optimizers = [optimizer]
    if recipe.scheduler is not None:
        scheduler = registry.get("scheduler", recipe.scheduler.name).build(
            recipe.scheduler.params,
            ctx=ctx,
            optimizer=optimizer,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
        )
        run.schedulers = [scheduler]


def render_resolved(recipe: Recipe) -> str:
    from runner._recipe.render import render

    return render(recipe.resolved)
