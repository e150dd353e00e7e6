"""The ``default`` checkpointer: when to save, what to keep, how to resume, preemption.

The engine registers the checkpointer as a callback object, so the methods below named
like hooks receive them. Saves happen only at points where the state is complete and
consistent: after an optimizer step (``on_end_train_step``), at an epoch's end after its
validation (``on_end_train_epoch``) and when training ends (``on_end_train``). These
hook implementations run last (``trylast``), after every other plugin has updated the
state it returns from ``get_state``.

SIGTERM and SIGINT are only recorded by the handler; the save happens at the end of the
current step, then the run stops cleanly (``run.should_stop``) and skips its final
validation and test (``run.extras["interrupted"]``). A second signal before that save
falls through to the handler that was there before (SIGINT: KeyboardInterrupt).

With several processes (e.g. the ``ddp`` backend) every rank takes the same save
decisions, only rank 0 writes, and all ranks meet at a barrier after each save; signal-
and time-triggered saves are agreed by an all-reduce of two flags at each step. Every
rank restores the checkpoint (rank 0's RNG state, as the DDP backend documents).
"""

from __future__ import annotations

import hashlib
import math
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner import METRICS_FILE, RunContext, RunnerError, hookimpl, known_length
from runner._engine import state as engine_state
from runner_checkpoint import checkpoint, provenance
from runner_checkpoint.beacon import Beacon
from runner_checkpoint.codec import CodecError
from runner_checkpoint.manifest import CorruptCheckpoint
from runner_checkpoint.params import CheckpointParams
from runner_checkpoint.signals import SignalCatcher
from runner_checkpoint.store import CHECKPOINTS, LATEST, Entry, Store


def say(message: str) -> None:
    """One line to stderr, prefixed so users know which plugin speaks."""
    print(f"checkpoint: {message}", file=sys.stderr, flush=True)


class CheckpointError(RunnerError):
    """Resume or save failed in a way the user must act on (several lines)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        return list(self._lines)


class _PrefixHash:
    """sha256 of the first N bytes of an append-only file, updated incrementally."""

    def __init__(self) -> None:
        self.offset = 0
        self.digest = hashlib.sha256()

    def at(self, path: Path, offset: int) -> str | None:
        if offset < self.offset:
            self.offset, self.digest = 0, hashlib.sha256()
        try:
            with open(path, "rb") as file:
                file.seek(self.offset)
                data = file.read(offset - self.offset)
        except FileNotFoundError:
            return None
        if len(data) != offset - self.offset:
            return None
        self.digest.update(data)
        self.offset = offset
        return self.digest.hexdigest()


def prefix_sha256(path: Path, offset: int) -> str | None:
    """sha256 of the first ``offset`` bytes of ``path`` (None if it is shorter or missing)."""
    return _PrefixHash().at(path, offset)


class DefaultCheckpointer:
    """Saves on steps, epochs, minutes and signals; keeps the last N and best M; resumes."""

    def __init__(self, run_dir: Path, params: CheckpointParams) -> None:
        if params.keep_best and not params.monitor:
            raise RunnerError('[checkpoint] keep_best needs monitor (e.g. monitor = "val/main/accuracy")')
        self.run_dir = run_dir
        self.params = params
        self.store = Store(run_dir / CHECKPOINTS)
        self.last_saved: Entry | None = None
        self._position: tuple[Any, ...] | None = None
        self._last_save_time = time.monotonic()
        self._provenance: dict[str, Any] | None = None
        self._metrics_hash = _PrefixHash()
        self._monitor_warned = False
        self._signals = SignalCatcher()
        self._beacon = Beacon.from_env()
        self._primary = True

    def _say(self, message: str) -> None:
        if self._primary:
            say(message)

    def _emit(self, kind: str, step: int, detail: str = "") -> None:
        if self._beacon is not None and self._primary:
            self._beacon.emit(kind, step, detail)

    # -- hooks -----------------------------------------------------------------------

    @hookimpl(trylast=True)
    def on_begin_train(self, run: RunContext) -> None:
        self._primary = run.is_primary
        if run.is_primary:
            self.store.cleanup()
        self._last_save_time = time.monotonic()
        if self.params.on_signal:
            self._signals.install()

    @hookimpl(trylast=True)
    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        signalled, time_due = self._agree(run)
        if signalled:
            self._stop_for_signal(run)
        elif self._step_due(run, global_step):
            self._save(run, "step")
        elif time_due:
            self._save(run, "time")
        self._emit("step", global_step)

    @hookimpl(trylast=True)
    def on_end_val_epoch(self, run: RunContext, global_step: int, key: str) -> None:
        self._emit("val", global_step, key)

    @hookimpl(trylast=True)
    def on_end_train_epoch(self, run: RunContext, epoch: int, global_step: int) -> None:
        signalled, _ = self._agree(run)
        if signalled:
            self._stop_for_signal(run)
        elif self.params.every_epoch and not (self.params.save_last and self._ends_here(run, at_epoch_end=True)):
            self._save(run, "epoch")
        self._emit("epoch", global_step, str(epoch))

    @hookimpl(trylast=True)
    def on_end_train(self, run: RunContext) -> None:
        if self.params.save_last and not run.extras.get("interrupted"):
            self._save(run, "end")

    @hookimpl
    def teardown(self, run: RunContext) -> None:
        self._signals.restore()
        if self._signals.received is not None and not run.extras.get("interrupted"):
            name = signal.Signals(self._signals.received).name
            self._say(f"received {name} after training had ended; the run finished normally")
        if self._beacon is not None:
            self._beacon.close()
            self._beacon = None

    # -- saving ----------------------------------------------------------------------

    def _ends_here(self, run: RunContext, at_epoch_end: bool) -> bool:
        """Whether training stops right after this point (the save at the end then covers it)."""
        cfg = run.recipe.run
        if run.should_stop or (cfg.max_steps is not None and run.global_step >= cfg.max_steps):
            return True
        return at_epoch_end and cfg.max_steps is None and cfg.epochs is not None and run.epoch + 1 >= cfg.epochs

    def _step_due(self, run: RunContext, global_step: int) -> bool:
        every = self.params.every_n_steps
        if not every or global_step % every:
            return False
        batches = known_length(run.train_loader) if run.train_loader is not None else None
        at_epoch_end = batches is not None and run.batch_in_epoch >= batches
        if self.params.save_last and self._ends_here(run, at_epoch_end):
            return False
        # The last step of an epoch is saved moments later by the epoch-end save (with the
        # epoch's validation), unless training stops before the epoch ends.
        stopping = self._ends_here(run, at_epoch_end=False)
        return not (self.params.every_epoch and at_epoch_end and not stopping)

    def _agree(self, run: RunContext) -> tuple[bool, bool]:
        """(a signal arrived, the time trigger is due), the same on every rank.

        With several processes each decides alone (signals reach ranks at different
        moments, clocks differ), so the two flags are summed over the ranks: one
        collective per step, only when ``on_signal`` or ``every_minutes`` is on.
        """
        signalled = self._signals.received is not None
        minutes = self.params.every_minutes
        time_due = bool(minutes) and time.monotonic() - self._last_save_time >= (minutes or 0) * 60
        if run.backend.world_size > 1 and (self.params.on_signal or minutes):
            import torch

            flags = torch.tensor([float(signalled), float(time_due)], dtype=torch.float64, device=run.device)
            summed = run.backend.all_reduce_sum(flags).tolist()
            signalled, time_due = summed[0] > 0, summed[1] > 0
        return signalled, time_due

    def _save(self, run: RunContext, reason: str) -> Entry | None:
        """Save now unless this exact position is already saved. Every rank takes the same
        decision and waits at a barrier; only the primary writes (and prunes)."""
        trainer = run.extras["trainer"]
        position = (run.global_step, run.epoch, run.batch_in_epoch, trainer.epoch_done, trainer.last_val_step)
        if position == self._position:
            return None
        self._position = position
        entry = self._write(run, reason) if run.is_primary else None
        if run.backend.world_size > 1:
            run.backend.barrier()
        self._last_save_time = time.monotonic()
        return entry

    def _write(self, run: RunContext, reason: str) -> Entry:
        trainer = run.extras["trainer"]
        offset = run.extras["metrics_offset"]()
        state = engine_state.capture(run)
        meta = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reason": reason,
            "step": run.global_step,
            "epoch": run.epoch,
            "batch_in_epoch": run.batch_in_epoch,
            "epoch_done": bool(trainer.epoch_done),
            "samples_seen": run.samples_seen,
            "metrics_file": {"offset": offset, "sha256": self._metrics_hash.at(run.run_dir / METRICS_FILE, offset)},
            "monitor": self._monitor(run),
            "world_size": run.backend.world_size,
        }
        if self._provenance is None:
            self._provenance = provenance.collect(run)
        try:
            entry = checkpoint.save(self.store, state, step=run.global_step, meta=meta, provenance=self._provenance)
        except CodecError as exc:
            raise RunnerError(f"checkpoint: cannot save the run state: {exc}") from exc
        except OSError as exc:
            raise RunnerError(f"checkpoint: saving to {self.store.root} failed: {exc}") from exc
        self.last_saved = entry
        p = self.params
        self.store.prune(p.keep_last, p.keep_best, p.monitor, p.mode)
        return entry

    def _monitor(self, run: RunContext) -> dict[str, Any] | None:
        name = self.params.monitor
        if not name:
            return None
        value = run.metric(name)
        validated = any(group.startswith("val/") for group in run.last_metrics)
        if value is None and validated and not self._monitor_warned:
            known = sorted(f"{g}/{k}" for g, values in run.last_metrics.items() for k in values)
            self._say(f"warning: monitor {name!r} is not among the metrics: {', '.join(known)}")
            self._monitor_warned = True
        finite = value is not None and math.isfinite(value)
        return {"name": name, "mode": self.params.mode, "value": float(value) if finite else None}  # type: ignore[arg-type]

    # -- signals ---------------------------------------------------------------------

    def _stop_for_signal(self, run: RunContext) -> None:
        received = self._signals.received
        name = signal.Signals(received).name if received is not None else "a signal on another rank"
        entry = self._save(run, "signal") or self.last_saved
        where = entry.path if entry is not None else self.store.root
        run.should_stop = True
        run.extras["interrupted"] = True
        run.stop_reason = f"{name}: saved {where.name} at step {run.global_step}; continue with --resume"
        self._say(
            f"received {name}: saved {where} at step {run.global_step}; stopping. Continue with: "
            f"runner run {run.recipe.path} --run-dir {run.run_dir} --resume"
        )
        self._signals.restore()

    # -- resume ----------------------------------------------------------------------

    def restore(self, run: RunContext, source: str | None) -> bool:
        """Load the newest valid checkpoint (or ``source``) into ``run``; False if there is none.

        Damaged checkpoints are reported file by file and skipped for the previous one;
        when every checkpoint is damaged, or ``source`` names a damaged one, the error
        lists what was wrong. A recipe changed in ways that break exactness stops here
        unless ``--allow-recipe-change`` was given.
        """
        self._primary = run.is_primary
        candidates, explicit = self._candidates(source)
        if not candidates:
            return False
        damaged: list[CorruptCheckpoint] = []
        for entry in candidates:
            try:
                loaded = checkpoint.load(entry.path)
            except CorruptCheckpoint as exc:
                if explicit:
                    raise CheckpointError([f"cannot resume from {entry.path}:", *exc.lines()[1:]]) from None
                damaged.append(exc)
                self._say(f"warning: {entry.path} is damaged and is skipped:")
                for problem in exc.problems:
                    self._say(f"  {problem}")
                continue
            if damaged:
                self._say(f"falling back to {entry.path} (step {loaded.manifest.get('step')})")
            self._check_provenance(run, loaded)
            self._apply(run, loaded)
            if run.backend.world_size > 1:
                run.backend.barrier()
            return True
        lines = [f"no valid checkpoint to resume from in {self.store.root}; every one is damaged:"]
        for failure in damaged:
            lines += [f"  {failure.name}:", *(f"    {p}" for p in failure.problems)]
        raise CheckpointError(lines)

    def _candidates(self, source: str | None) -> tuple[list[Entry], bool]:
        if source is None:
            candidates, note = self.store.resume_candidates()
            if note:
                self._say(f"warning: {note}")
            return candidates, False
        path = Path(source)
        if path.is_dir() and (path / "manifest.json").exists():
            return [Entry(path.name, path)], True
        if path.is_dir():
            store = Store(path / CHECKPOINTS if (path / CHECKPOINTS).is_dir() else path)
        elif path.name == LATEST and path.is_file():
            store = Store(path.parent)
        else:
            raise RunnerError(
                f"--resume {source}: not a checkpoint (expected a checkpoint directory holding manifest.json, "
                "a checkpoints directory or a run directory)"
            )
        candidates, note = store.resume_candidates()
        if note:
            self._say(f"warning: {note}")
        if not candidates:
            raise RunnerError(f"--resume {source}: no checkpoints in {store.root}")
        return candidates, False

    def _check_provenance(self, run: RunContext, loaded: checkpoint.Loaded) -> None:
        saved = loaded.provenance
        current = provenance.collect(run)
        changes = provenance.recipe_changes(saved.get("recipe", {}), current["recipe"])
        plugins = provenance.plugin_changes(saved.get("plugins", []), current["plugins"])
        versions = provenance.version_changes(saved.get("versions", {}), current["versions"])
        if changes:
            self._say(f"the recipe changed since {loaded.name} was saved:")
            for change in changes:
                self._say(f"  {change}")
        if plugins or versions:
            self._say(f"plugins or libraries changed since {loaded.name} was saved:")
            for line in plugins + versions:
                self._say(line)
        breaking = [c for c in changes if c.breaking]
        if breaking and not run.allow_recipe_change:
            raise CheckpointError(
                [
                    f"the recipe changed since {loaded.path} in ways that break exact resume:",
                    *(f"  {c}" for c in breaking),
                    "pass --allow-recipe-change to resume anyway (the result will differ from an uninterrupted run)",
                ]
            )
        if breaking:
            self._say("resuming anyway (--allow-recipe-change): the run will not match an uninterrupted one")

    def _apply(self, run: RunContext, loaded: checkpoint.Loaded) -> None:
        state = dict(loaded.state)
        state["metrics_offset"] = self._align_metrics(run, loaded)
        pending = state.get("pending_losses")
        if pending is not None and hasattr(pending, "to"):
            state["pending_losses"] = pending.to(run.device)
        try:
            engine_state.restore(run, state)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise RunnerError(
                f"checkpoint {loaded.path} does not fit this run: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc
        trainer = run.extras["trainer"]
        self._position = (run.global_step, run.epoch, run.batch_in_epoch, trainer.epoch_done, trainer.last_val_step)
        self._metrics_hash = _PrefixHash()
        if run.is_primary:
            self._metrics_hash.at(run.run_dir / METRICS_FILE, int(state["metrics_offset"]))
        self._say(f"resumed from {loaded.path} (step {run.global_step}, epoch {run.epoch})")

    def _align_metrics(self, run: RunContext, loaded: checkpoint.Loaded) -> int:
        """Make ``metrics.jsonl`` hold exactly what it held at save time; return the offset.

        Normally it already starts with those bytes and the engine cuts what follows. When
        resuming into another run directory, the prefix is copied from the checkpoint's own.
        """
        info = loaded.manifest.get("metrics_file") or {}
        offset, digest = info.get("offset"), info.get("sha256")
        target = run.run_dir / METRICS_FILE
        if not isinstance(offset, int) or offset < 0:
            return 0
        if not run.is_primary:
            return offset  # only the primary process writes metrics
        if prefix_sha256(target, offset) == digest:
            return offset
        source = loaded.path.parent.parent / METRICS_FILE
        if source.resolve() != target.resolve() and prefix_sha256(source, offset) == digest:
            with open(source, "rb") as file:
                prefix = file.read(offset)
            with open(target, "r+b") as file:
                file.truncate(0)
                file.write(prefix)
            self._say(f"copied the first {offset} bytes of {source} (metrics up to the checkpoint) into {target}")
            return offset
        size = target.stat().st_size if target.exists() else 0
        self._say(
            f"warning: {target} does not hold the metrics the checkpoint was saved with; "
            "new records are appended after its current content"
        )
        return size
