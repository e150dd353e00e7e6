"""One process's run: build every component a recipe names, then train, validate and test.

:class:`Engine` also implements the run services behind :class:`runner.RunContext`
(:class:`runner._contract.context.RunServices`): capturing and restoring the run state,
the metrics log's offset, and metrics that callbacks add to records.

The objects a recipe chose (backend, model, task, callbacks, checkpointer, loggers) are
registered with the plugin manager for the run's lifetime as *run objects*: their
hook-named methods fire in this run only, in recipe order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import attrs
import torch

from runner._contract.context import BuildContext, RunContext
from runner._contract.errors import PluginError, RunnerError
from runner._contract.protocols import protocol_problems
from runner._contract.stage import Stage
from runner._data.loader import known_length
from runner._data.module import build_datamodule
from runner._engine import state as run_state
from runner._engine.loop import Trainer
from runner._engine.progress import Progress, announce
from runner._engine.records import MetricsFile, Records
from runner._engine.rundir import METRICS_FILE, Heartbeat
from runner._engine.signals import SignalService
from runner._engine.threads import apply_threads
from runner._plugins.hooks import RunHooks
from runner._plugins.manager import CALLBACK_HOOKS

if TYPE_CHECKING:
    from runner._contract.backend import Backend
    from runner._contract.recipe import ComponentConfig
    from runner._contract.registration import PluginInfo
    from runner._engine.job import Job
    from runner._plugins.manager import PluginManager
    from runner._plugins.registry import Component


def seed_everything(seed: int, deterministic: bool) -> None:
    import os
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def checked(kind: str, name: str, component: Component, obj: Any) -> Any:
    """``obj`` if it implements ``kind``'s protocol, else a one-line error naming its plugin."""
    for problem in protocol_problems(kind, obj):
        raise PluginError(f"{kind} {name!r} (plugin {component.plugin}) {problem}")
    return obj


def _hook_proxy(obj: Any) -> SimpleNamespace | None:
    """The hook-named methods ``obj``'s class defines, as a plain object for pluggy.

    pluggy inspects every attribute of what it registers; a model's or a third-party
    object's attributes may be properties with side effects, so only the methods named
    like hooks are handed over (bound methods keep their ``@hookimpl`` options).
    """
    methods = {name: getattr(obj, name) for name in CALLBACK_HOOKS if callable(getattr(type(obj), name, None))}
    return SimpleNamespace(**methods) if methods else None


class Engine:
    """Builds and trains ``job`` in this process with ``backend`` (this rank's view)."""

    def __init__(self, job: Job, backend: Backend) -> None:
        self.started = time.perf_counter()
        self.job = job
        self.plugins: PluginManager = job.plugin_manager()
        if not backend.is_primary:  # every rank would say the same: the primary speaks
            self.plugins.warn = lambda line: None
        self.registry = self.plugins.registry
        self.hooks = RunHooks(self.plugins)
        recipe, cfg = job.recipe, job.recipe.run
        # Before this process's first torch operation: threads beyond the cores' share
        # slow every process down (see runner._engine.threads).
        train_loader = recipe.train.loader if recipe.train is not None else None
        workers = 0 if train_loader is None or train_loader.debug_mode else train_loader.num_workers
        self._threads_before = torch.get_num_threads()  # given back when the run ends (in-process runs)
        self.num_threads = apply_threads(cfg.num_threads, world_size=backend.world_size, loader_workers=workers)
        seed_everything(cfg.seed, cfg.deterministic)
        device = backend.device(cfg.device)
        if cfg.precision == "fp16" and device.type != "cuda":
            raise RunnerError("[run] precision = 'fp16' needs a CUDA device; use 'bf16' or 'fp32' on CPU")
        self.ctx = BuildContext(
            recipe=recipe,
            seed=cfg.seed,
            run_dir=job.run_dir,
            device=device,
            rank=backend.rank,
            world_size=backend.world_size,
        )
        self.run = RunContext(
            recipe=recipe,
            run_dir=job.run_dir,
            backend=backend,
            device=device,
            plugins=tuple(self.plugins.plugins()),
            resume=job.resume,
            allow_recipe_change=job.allow_recipe_change,
            services=self,
        )
        self.checkpointer: Any = None
        self.metrics_file: MetricsFile | None = None
        self.records = Records(None, [])
        self.trainer: Trainer | None = None
        self._proxies: list[Any] = []

    # -- building --------------------------------------------------------------------

    def build(self) -> None:
        run, recipe, ctx = self.run, self.run.recipe, self.ctx
        on_cuda = run.device.type == "cuda"
        announce("building data")
        run.datamodule = build_datamodule(recipe, self.registry, ctx, on_cuda)  # [data.*] and/or [datamodule]
        for stage in (Stage.TRAIN, Stage.VAL, Stage.TEST):
            run.datamodule.setup(stage)
        run.train_loader = run.datamodule.train_dataloader()
        run.val_loaders.update(run.datamodule.val_dataloaders())
        run.test_loaders.update(run.datamodule.test_dataloaders())
        if run.train_loader is None:
            raise RunnerError("nothing to train on: add a [data.train] table")
        announce("building the model")
        model_component = self.registry.get("model", recipe.model.name)
        model = model_component.build(recipe.model.params, ctx=ctx).to(run.device)
        if recipe.run.compile is not False:
            # In place (Module.compile): no wrapper, so state dict keys, checkpoints and the
            # backend's wrapping stay those of the uncompiled module.
            model.compile(mode=None if recipe.run.compile is True else recipe.run.compile)
        run.model = run.backend.wrap_model(model)
        task_component = self.registry.get("task", recipe.task.name)
        run.task = checked("task", recipe.task.name, task_component, task_component.build(recipe.task.params, ctx=ctx))
        if run.is_primary:  # before the loggers are built: they may read recipe.toml
            self._open_records()
        objects = self._run_objects(model)
        self._register(objects)
        self._build_optimization()
        if recipe.run.precision == "fp16":
            run.scaler = torch.amp.GradScaler("cuda")
        self.trainer = Trainer(run, self.hooks, self.records, Progress(0, enabled=False))

    def _run_objects(self, model: Any) -> list[tuple[Any, str, Any]]:
        """``(object, owner name, plugin)`` of every object the recipe chose, in recipe order."""
        run, recipe, ctx = self.run, self.run.recipe, self.ctx
        objects: list[tuple[Any, str, Any]] = [
            (run.backend, f"backend:{recipe.backend.name}", self.registry.get("backend", recipe.backend.name).plugin),
            (model, f"model:{recipe.model.name}", self.registry.get("model", recipe.model.name).plugin),
            (run.task, f"task:{recipe.task.name}", self.registry.get("task", recipe.task.name).plugin),
        ]
        for index, config in enumerate(recipe.callbacks):
            component = self.registry.get("callback", config.name)
            callback = component.build(config.params, ctx=ctx)
            objects.append((callback, f"callback:{config.name}#{index}", component.plugin))
        if run.is_primary:
            for index, config in enumerate(recipe.loggers):
                logger = self._build("logger", config, run_dir=run.run_dir)
                plugin = self.registry.get("logger", config.name).plugin
                objects.append((logger, f"logger:{config.name}#{index}", plugin))
        if recipe.checkpoint is not None:
            self.checkpointer = self._build("checkpointer", recipe.checkpoint, run_dir=run.run_dir)
            component = self.registry.get("checkpointer", recipe.checkpoint.name)
            objects.append((self.checkpointer, f"checkpointer:{recipe.checkpoint.name}", component.plugin))
        return objects

    def _build(self, kind: str, config: ComponentConfig, **runtime: Any) -> Any:
        component = self.registry.get(kind, config.name)
        return checked(kind, config.name, component, component.build(config.params, ctx=self.ctx, **runtime))

    def _open_records(self) -> None:
        from runner._recipe.render import render

        run = self.run
        run.run_dir.mkdir(parents=True, exist_ok=True)
        (run.run_dir / "recipe.toml").write_text(render(run.recipe.resolved), encoding="utf-8")
        self.metrics_file = MetricsFile(run.run_dir / METRICS_FILE)
        self.records.metrics = self.metrics_file

    def _register(self, objects: list[tuple[Any, str, Any]]) -> None:
        # pluggy calls the last registered first: register in reverse so hooks run in recipe order.
        for obj, owner, plugin in reversed(objects):
            if hasattr(obj, "log") and owner.startswith("logger:"):
                self.records.loggers.insert(0, (obj, plugin))
            proxy = _hook_proxy(obj)
            if proxy is None:
                continue
            self.plugins.add_callback_object(proxy, attrs.evolve(plugin, name=owner))
            self._proxies.append(proxy)

    def _build_optimization(self) -> None:
        run, recipe = self.run, self.run.recipe
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
        if recipe.optimizer is None:  # the task, the model or a plugin provides them
            provided = self.hooks.get_optimizers_schedulers(run, run.model, steps_per_epoch, epochs)
            if provided is None:
                raise RunnerError(
                    "the recipe has no [optimizer] table and neither the task, the model nor a plugin "
                    "provides get_optimizers_schedulers; add an [optimizer] table"
                )
            run.optimizers, run.schedulers = provided
            return
        optimizer = self.registry.get("optimizer", recipe.optimizer.name).build(
            recipe.optimizer.params, ctx=self.ctx, model=run.model
        )
        run.optimizers = [optimizer]
        if recipe.scheduler is not None:
            scheduler = self.registry.get("scheduler", recipe.scheduler.name).build(
                recipe.scheduler.params,
                ctx=self.ctx,
                optimizer=optimizer,
                total_steps=total_steps,
                steps_per_epoch=steps_per_epoch,
            )
            run.schedulers = [scheduler]

    # -- running ---------------------------------------------------------------------

    def train(self, show_progress: bool) -> RunOutcome:
        run, trainer = self.run, self.trainer
        assert trainer is not None
        heartbeat: Heartbeat | None = None
        try:
            if run.resume or self.job.restart:
                announce("restoring the checkpoint")
            self._restore()
            run.backend.barrier()  # every rank has restored before any trains or saves
            # `runner runs` tells running from crashed runs by the heartbeat; it starts once the
            # run has restored, so a refused resume leaves the directory's earlier run as it was.
            if run.is_primary:
                heartbeat = Heartbeat(run.run_dir).start()
            trainer.progress = Progress(trainer.total_steps, enabled=show_progress and run.is_primary, run=run)
            self.hooks.setup(run, Stage.TRAIN)
            # With a checkpointer there is something to continue from: say how at the first signal.
            hint = run.resume_command if run.recipe.checkpoint is not None else ""
            with SignalService(run.backend, run.device, announce=run.is_primary, resume_hint=hint) as signals:
                trainer.signals = signals
                trainer.fit()
                if run.recipe.run.save_model:  # also when a signal stopped training: its weights so far
                    self._save_model()
                if not run.interrupted and run.recipe.run.test and run.test_loaders:
                    self.hooks.setup(run, Stage.TEST)
                    trainer.test_all()
        finally:
            trainer.progress.close()
            try:
                self.hooks.teardown(run)
                run.datamodule.teardown()
            finally:
                self.release()
                if heartbeat is not None:
                    heartbeat.stop(sys.exc_info()[1], interrupted=run.interrupted)
        return RunOutcome(time.perf_counter() - self.started)

    def _save_model(self) -> None:
        from runner._engine.savemodel import save_model

        save_model(self.run, self.hooks, meta=self.ctx.meta, local_plugins=self.job.local_plugins)

    def release(self) -> None:
        """Close the records and unregister the run objects (also after a failed build)."""
        self.records.close()
        if torch.get_num_threads() != self._threads_before:
            torch.set_num_threads(self._threads_before)
        for proxy in self._proxies:
            self.plugins.remove_callback_object(proxy)
        self._proxies.clear()

    def _restore(self) -> None:
        """Continue from a checkpoint when asked (or after a restart), else start fresh."""
        run, job = self.run, self.job
        # Workers restarted after a failure (job.restart > 0, e.g. by torch's elastic
        # agent) continue from the newest checkpoint this run directory holds; without
        # one they start over, as the first attempt did.
        cp = self.checkpointer
        restored = job.restart > 0 and cp is not None and cp.restore(run, None)
        if run.resume and not restored:
            if cp is None:
                raise RunnerError("--resume needs a [checkpoint] table in the recipe")
            if isinstance(run.resume, str) and not cp.restore(run, run.resume):
                raise RunnerError(f"no valid checkpoint to resume from in {run.resume}")
            # --resume before any checkpoint (a first start, or a run killed before its
            # first save) starts from the beginning: one command line for start and restarts.
            if run.resume is True and not cp.restore(run, None):
                if run.is_primary:
                    print(
                        f"no checkpoint in {run.run_dir} yet: starting from the beginning", file=sys.stderr, flush=True
                    )
                self.truncate_metrics(0)  # an earlier attempt's records are written again
        elif job.restart > 0 and not restored:
            self.truncate_metrics(0)  # the failed attempt's records are written again

    # -- run services (runner.RunContext's methods) ------------------------------------

    def capture_state(self) -> dict[str, Any]:
        assert self.trainer is not None
        return run_state.capture(self.run, self.hooks, self.trainer.pending_losses, self.metrics_offset())

    def restore_state(self, state: dict[str, Any]) -> None:
        assert self.trainer is not None
        self.trainer.pending_losses[:], offset = run_state.restore(self.run, self.hooks, state)
        self.truncate_metrics(offset)

    def metrics_offset(self) -> int:
        return self.metrics_file.tell() if self.metrics_file is not None else 0

    def truncate_metrics(self, offset: int) -> None:
        if self.metrics_file is not None:
            self.metrics_file.truncate(offset)

    def log_metrics(self, values: Mapping[str, float], stage: str) -> None:
        assert self.trainer is not None
        self.trainer.add_metrics(values, stage)

    def plugin_of(self, owner: str) -> PluginInfo | None:
        info = self.plugins.info(owner)
        return info if info.version != "?" else None


@attrs.frozen
class RunOutcome:
    seconds: float


def build_and_train(job: Job, backend: Backend) -> tuple[RunContext, RunOutcome]:
    """Build ``job`` in this process and train it; the run context and timing."""
    engine = Engine(job, backend)
    try:
        engine.build()
    except BaseException:
        engine.release()
        raise
    outcome = engine.train(job.show_progress)
    return engine.run, outcome
