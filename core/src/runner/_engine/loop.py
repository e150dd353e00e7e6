"""The training loop: epochs or max_steps, gradient accumulation and clipping, mixed
precision, keyed validation every N steps or per epoch, test at the end.

Per-step work is kept to what a hand-written loop does plus a few attribute updates:
metrics are synchronised only on logging steps, and hooks without implementations are
not called at all.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from typing import TYPE_CHECKING, Any

import torch

from runner._contract.errors import RunnerError
from runner._contract.stage import Stage
from runner._contract.task import StepInfo, StepOutput
from runner._data.loader import known_length
from runner._engine.records import Records

if TYPE_CHECKING:
    from runner._contract.context import RunContext
    from runner._engine.progress import Progress
    from runner._engine.signals import SignalService
    from runner._plugins.hooks import RunHooks


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Recursively move tensors in tuples, lists and dicts to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, (list, tuple)):
        moved = [move_to_device(item, device, non_blocking) for item in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device, non_blocking) for key, value in batch.items()}
    return batch


def _float64(x: Any) -> float:
    return float(x.double().item()) if isinstance(x, torch.Tensor) else float(x)


def _value(x: Any) -> float:
    return float(x.item()) if isinstance(x, torch.Tensor) else float(x)


class OutputCollector:
    """Keeps the first ``limit`` rows of an evaluation epoch's step outputs (``run.collect_outputs``).

    Tensors are detached and moved to the CPU as they come, so device memory does not grow
    with the epoch; rows past ``limit`` are dropped with one warning.
    """

    def __init__(self, limit: int, where: str) -> None:
        self.limit = limit
        self.where = where
        self.rows = 0
        self.parts: list[list[torch.Tensor]] = []
        self.dropped = False

    def add(self, outputs: Any) -> None:
        tensors = [t for t in (outputs or ()) if isinstance(t, torch.Tensor)]
        if not tensors:
            return
        room = self.limit - self.rows
        if room <= 0:
            self._drop()
            return
        rows = tensors[0].shape[0] if tensors[0].dim() else 1
        if rows > room:
            self._drop()
        kept = [(t[:room] if t.dim() else t.reshape(1)).detach().cpu() for t in tensors]
        if not self.parts:
            self.parts = [[] for _ in kept]
        for part, tensor in zip(self.parts, kept, strict=False):
            part.append(tensor)
        self.rows += min(rows, room)

    def _drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            warnings.warn(
                f"{self.where}: step outputs beyond {self.limit} rows are not collected "
                "(run.collect_outputs(max_samples=...) asks for more)",
                RuntimeWarning,
                stacklevel=3,
            )

    def result(self) -> tuple[torch.Tensor, ...]:
        return tuple(torch.cat(part) for part in self.parts)


class Trainer:
    """Drives one run in one process; built and started by :func:`runner._engine.run.execute`."""

    def __init__(
        self,
        run: RunContext,
        hooks: RunHooks,
        records: Records,
        progress: Progress,
        signals: SignalService | None = None,
    ) -> None:
        self.run = run
        self.hooks = hooks
        self.records = records
        self.progress = progress
        self.signals = signals
        cfg = run.recipe.run
        self.cfg = cfg
        self.device: torch.device = run.device
        self.on_cpu = self.device.type == "cpu"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)
        # None in fp32: the step is called directly, without a context manager per step.
        self.autocast: Any = (lambda: torch.autocast(self.device.type, dtype=dtype)) if dtype is not None else None
        batches = known_length(run.train_loader) if run.train_loader is not None else 0
        self.steps_per_epoch = math.ceil(batches / cfg.grad_accum) if batches else 0
        self.total_steps = self._total_steps()
        run.steps_per_epoch = self.steps_per_epoch if batches is not None else None
        run.total_steps = self.total_steps
        self._step_hooks = True
        self.pending_losses: list[torch.Tensor] = []
        """Losses of micro-batches since the last train log (checkpointed for exact resume)."""
        self.added_metrics: dict[str, dict[str, float]] = {}
        """Values callbacks added with ``run.log_metrics``, by stage, until the next record."""
        self.collected: tuple[torch.Tensor, ...] | None = None
        """The latest evaluation's collected step outputs (``run.collect_outputs``)."""

    def _total_steps(self) -> int:
        if self.cfg.max_steps is not None:
            return self.cfg.max_steps
        return self.steps_per_epoch * (self.cfg.epochs or 0)

    # -- logging ------------------------------------------------------------------

    def add_metrics(self, values: Any, stage: str) -> None:
        """``run.log_metrics``: keep ``values`` for the next record of ``stage``."""
        added = self.added_metrics.setdefault(stage, {})
        for name, value in dict(values).items():
            added[str(name)] = _value(value)

    def emit(self, record: dict[str, Any]) -> None:
        run = self.run
        added = self.added_metrics.pop(record["stage"], None)
        if added:
            record.update(added)
            group = "train" if record["stage"] == "train" else f"{record['stage']}/{record.get('key', 'main')}"
            run.last_metrics.setdefault(group, {}).update(added)
        if self.hooks.log.get_hookimpls():
            self.hooks.on_log(run, record)
        if run.is_primary:
            self.records.log(record)
            self.progress.update(run.global_step, record)

    # -- training -----------------------------------------------------------------

    def fit(self) -> None:
        run, cfg = self.run, self.cfg
        self.hooks.on_begin_train(run)
        max_epochs = cfg.epochs if cfg.max_steps is None else None
        while not self._finished(max_epochs):
            if run.epoch_done:
                run.epoch += 1
                run.batch_in_epoch = 0
                run.epoch_done = False
            self.train_epoch()
        # on_end_train comes after the last validation (skipped when a signal interrupted the run)
        if not run.interrupted and run.val_loaders and run.last_val_step != run.global_step:
            self.validate_all()
        self.hooks.on_end_train(run, run.global_step)
        self.records.flush()

    def check_signals(self) -> None:
        """At a step or epoch boundary: stop for a signal once every rank agrees on it."""
        if self.signals is None or self.run.interrupted:
            return
        name = self.signals.agreed()
        if name:
            run = self.run
            run.interrupted = name
            run.should_stop = True
            run.stop_reason = f"interrupted by {'Ctrl-C' if name == 'SIGINT' else name}"
            self.hooks.on_interrupt(run, name)

    def _finished(self, max_epochs: int | None) -> bool:
        run = self.run
        if run.should_stop:
            return True
        if self.cfg.max_steps is not None and run.global_step >= self.cfg.max_steps:
            return True
        return max_epochs is not None and run.epoch_done and run.epoch + 1 >= max_epochs

    def train_epoch(self) -> None:
        run, cfg = self.run, self.cfg
        loader = run.train_loader
        loader.set_epoch(run.epoch)
        loader.skip(run.batch_in_epoch)
        self.hooks.on_begin_train_epoch(run, run.epoch, run.global_step)
        model, task, optimizers = run.model, run.task, run.optimizers
        model.train()
        info = StepInfo(Stage.TRAIN, run.global_step, run.epoch, self.device, False)
        accum, log_every, max_steps = cfg.grad_accum, cfg.log_every, cfg.max_steps
        losses = self.pending_losses
        pending = run.batch_in_epoch % accum
        batches = known_length(loader)  # None: a stream whose epoch ends when it does
        out: StepOutput | None = None
        autocast = self.autocast
        # Hook implementations are read once per epoch: callbacks are registered before training.
        backward_hooks = bool(self.hooks.end_backward.get_hookimpls())
        self._step_hooks = bool(self.hooks.end_train_step.get_hookimpls())
        # The time spent in the loader's __next__ is the data wait (run.data_wait): two
        # clock reads per batch, the cheapest way to tell data-bound from compute-bound.
        batches_iter = iter(loader)
        clock = time.perf_counter
        while True:
            waited = clock()
            try:
                batch = next(batches_iter)
            except StopIteration:
                break
            run.data_wait += clock() - waited
            if not self.on_cpu:
                batch = move_to_device(batch, self.device, non_blocking=True)
            info.global_step = run.global_step
            info.want_metrics = (run.global_step + 1) % log_every == 0
            if autocast is None:
                out = task.train_step(model, batch, info)
            else:
                with autocast():
                    out = task.train_step(model, batch, info)
            if out.loss is None:
                raise RunnerError(f"task {run.recipe.task.name!r}: train_step returned no loss")
            loss = out.loss
            if accum > 1:  # mean over the group's micro-batches (fewer in an epoch's trailing group)
                group = accum if batches is None else max(1, min(accum, batches - (run.batch_in_epoch - pending)))
                loss = loss / group
            if run.scaler is not None:
                run.scaler.scale(loss).backward()
            else:
                loss.backward()
            if backward_hooks:
                self.hooks.on_end_backward(run, run.global_step, loss)
            losses.append(out.loss.detach())  # type: ignore[union-attr]
            run.batch_in_epoch += 1
            run.samples_seen += out.count
            pending += 1
            if pending == accum:
                pending = 0
                self.optimizer_step(optimizers, out, losses)
                if run.should_stop or (max_steps is not None and run.global_step >= max_steps):
                    return
        if pending and out is not None:  # flush a partial accumulation at the epoch's end
            self.optimizer_step(optimizers, out, losses)
        if run.should_stop or (max_steps is not None and run.global_step >= max_steps):
            return
        if cfg.val_every is None:
            self.validate_all()
        run.epoch_done = True
        self.hooks.on_end_train_epoch(run, run.epoch, run.global_step)
        self.check_signals()

    def optimizer_step(self, optimizers: list[Any], out: StepOutput, losses: list[torch.Tensor]) -> None:
        run, cfg = self.run, self.cfg
        scaler = run.scaler
        if cfg.clip_grad_norm is not None:
            if scaler is not None:
                for optimizer in optimizers:
                    scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.clip_grad_norm)
        for optimizer in optimizers:
            if scaler is not None:
                scaler.step(optimizer)
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.update()
        for scheduler in run.schedulers:
            scheduler.step()
        run.global_step += 1
        if run.global_step % cfg.log_every == 0:
            self.log_train(out, losses)
        if cfg.val_every is not None and run.global_step % cfg.val_every == 0:
            self.validate_all()
        if self._step_hooks:
            self.hooks.on_end_train_step(run, run.global_step, out)
        self.check_signals()

    def log_train(self, out: StepOutput, losses: list[torch.Tensor]) -> None:
        run = self.run
        mean_loss = torch.stack(losses).float().mean()
        losses.clear()
        # The last batch's metrics are averaged over ranks (weighted by their counts) in
        # the same all-reduce as the loss.
        sums: dict[str, tuple[Any, float]] = {
            name: (_value(v) * out.count, out.count) for name, v in out.metrics.items()
        }
        reduced = self.reduce({"loss": (mean_loss, 1), **sums})
        record: dict[str, Any] = {"stage": "train", "epoch": run.epoch, "step": run.global_step, **reduced}
        record["lr"] = run.optimizers[0].param_groups[0]["lr"] if run.optimizers else None
        run.last_metrics["train"] = {k: v for k, v in record.items() if isinstance(v, float)}
        self.emit(record)

    # -- evaluation ---------------------------------------------------------------

    def reduce(self, sums: dict[str, tuple[torch.Tensor, float]]) -> dict[str, float]:
        """Mean of each metric over all processes, from (weighted sum, weight) pairs."""
        if not sums:
            return {}
        if self.run.backend.world_size == 1:  # nothing to reduce: skip building a tensor to all-reduce
            return {n: _float64(total) / weight if weight else math.nan for n, (total, weight) in sums.items()}
        names = list(sums)
        packed = torch.stack(
            [torch.as_tensor(sums[n][0], dtype=torch.float64, device=self.device).reshape(()) for n in names]
            + [torch.as_tensor(float(sums[n][1]), dtype=torch.float64, device=self.device) for n in names]
        )
        packed = self.run.backend.all_reduce_sum(packed)
        values = packed.tolist()
        count = len(names)
        return {n: values[i] / values[count + i] if values[count + i] else math.nan for i, n in enumerate(names)}

    def evaluate(self, stage: Stage, key: str, loader: Any) -> dict[str, float]:
        run = self.run
        model, task = run.model, run.task
        was_training = model.training
        model.eval()
        info = StepInfo(stage, run.global_step, run.epoch, self.device, True)
        sums: dict[str, list[Any]] = {}
        limit = self.cfg.max_val_batches
        collector = OutputCollector(run.outputs_limit, f"{stage.value}/{key}") if run.outputs_limit else None
        loader.set_epoch(0)
        with torch.no_grad():
            for index, batch in enumerate(loader):
                if limit is not None and index >= limit:
                    break
                batch = move_to_device(batch, self.device)
                with self.autocast() if self.autocast is not None else contextlib.nullcontext():
                    out = task.forward(stage, model, batch, info)
                if collector is not None:
                    collector.add(out.outputs)
                items = dict(out.metrics)
                if out.loss is not None:
                    items = {"loss": out.loss, **items}
                for name, value in items.items():
                    weighted = (value.detach().double() if isinstance(value, torch.Tensor) else value) * out.count
                    if name in sums:
                        sums[name][0] = sums[name][0] + weighted
                        sums[name][1] += out.count
                    else:
                        sums[name] = [weighted, out.count]
        model.train(was_training)
        self.collected = collector.result() if collector is not None else None
        return self.reduce({name: (total, weight) for name, (total, weight) in sums.items()})

    def validate_all(self) -> None:
        self.run.last_val_step = self.run.global_step
        self._evaluate_all(Stage.VAL, self.run.val_loaders)

    def test_all(self) -> None:
        self._evaluate_all(Stage.TEST, self.run.test_loaders)

    def _evaluate_all(self, stage: Stage, loaders: dict[str, Any]) -> None:
        """Evaluate every keyed loader of ``stage``: announce its metrics (callbacks may add
        their own with ``run.log_metrics``), then record and remember them."""
        run = self.run
        begin = self.hooks.on_begin_val_epoch if stage is Stage.VAL else self.hooks.on_begin_test_epoch
        hook = self.hooks.on_end_val_epoch if stage is Stage.VAL else self.hooks.on_end_test_epoch
        for key, loader in loaders.items():
            begin(run, run.global_step, key)
            metrics = self.evaluate(stage, key, loader)
            run.last_metrics[f"{stage.value}/{key}"] = metrics
            outputs, self.collected = self.collected, None
            hook(run, run.global_step, key, metrics, outputs)
            self.emit({"stage": stage.value, "key": key, "epoch": run.epoch, "step": run.global_step, **metrics})
        self.records.flush()
