"""The ``default`` checkpointer: when to save, what to keep, how to resume, preemption.

The engine registers the checkpointer as a callback object, so the methods below named
like hooks receive them. Saves happen only at points where the state is complete and
consistent: after an optimizer step (``on_end_train_step``), at an epoch's end after its
validation (``on_end_train_epoch``) and when training ends (``on_end_train``). These
hook implementations run last (``trylast``), after every other plugin has updated the
state it returns from ``get_state``.

SIGTERM and SIGINT belong to the core: it calls ``on_interrupt`` at the end of the step
during which the signal arrived (on every rank at the same step), the checkpointer saves
there, and the run stops without its final validation and test and exits 130/143.

With several processes (e.g. the ``ddp`` backend) every rank takes the same save
decisions and captures the state (a collective: each rank's pending losses are
gathered), only rank 0 writes, and all ranks meet at a barrier after each save. A state
with sharded tensors (the ``fsdp`` backend) is written by every rank, each its shards
(:mod:`runner_checkpoint.saver`). With ``async = true`` the state is copied to host
memory at the save point and written in the background; the next save, a signal and the
run's teardown wait for that write.
Time-triggered saves (``every_minutes``) are agreed by an all-reduce of one flag per step,
only when ``every_minutes`` is set. Every rank restores the checkpoint (rank 0's RNG
state, as the DDP backend documents; each rank its own pending losses).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runner import METRICS_FILE, PluginError, RunContext, RunnerError, hookimpl, known_length
from runner_checkpoint import checkpoint, codec, provenance
from runner_checkpoint.beacon import Beacon
from runner_checkpoint.codec import PLUGINS_KEY, CodecError, check, describe
from runner_checkpoint.fsutil import NotRegularFile, open_regular, read_exactly
from runner_checkpoint.manifest import CorruptCheckpoint
from runner_checkpoint.params import CheckpointParams
from runner_checkpoint.saver import Job, Saver
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


def owner_label(run: RunContext, owner: str) -> str:
    """Who a state owner is, for users: ``plugin DIST VERSION``, or ``callback 'NAME' from
    plugin DIST VERSION`` for a run object (state owners are ``callback:NAME#0``-style)."""
    info = run.plugin_of(owner)
    kind, sep, rest = owner.partition(":")
    if sep:
        label = f"{kind} '{rest.rpartition('#')[0] or rest}'"
        return f"{label} from plugin {info}" if info is not None else label
    return f"plugin {info if info is not None else owner}"


def unstorable(run: RunContext, exc: CodecError) -> PluginError:
    """The one-line error for a state value no checkpoint can hold: the state key and the
    plugin that returned it. A PluginError, so the core does not blame runner-checkpoint."""
    path = exc.path
    if exc.type_name is None:  # not an unstorable value (should not happen while saving)
        return PluginError(f"checkpoint: cannot save the run state: {exc}")
    if len(path) >= 3 and path[0] == PLUGINS_KEY:  # plugins -> owner -> key -> ...
        return PluginError(describe((PLUGINS_KEY, *path[2:]), exc.type_name, owner_label(run, str(path[1]))))
    return PluginError(describe(path, exc.type_name))


def check_plugin_states(run: RunContext, state: Mapping[str, Any]) -> None:
    """Raise the error the first save would raise for a plugin state no checkpoint can
    hold (a set, a function...), naming the state key and its owner."""
    for owner, result in (state.get(PLUGINS_KEY) or {}).items():
        try:
            check(result, (PLUGINS_KEY, owner))
        except CodecError as exc:
            raise unstorable(run, exc) from None


class _PrefixHash:
    """sha256 of the first N bytes of an append-only file, updated incrementally."""

    def __init__(self) -> None:
        self.offset = 0
        self.digest = hashlib.sha256()

    def at(self, path: Path, offset: int) -> str | None:
        if offset < self.offset:
            self.offset, self.digest = 0, hashlib.sha256()
        try:
            with open_regular(path) as file:
                file.seek(self.offset)
                data = read_exactly(file, offset - self.offset)
        except (FileNotFoundError, NotRegularFile):
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
        self.saver = Saver(self.store, asynchronous=params.async_)
        self.last_saved: Entry | None = None
        self._position: tuple[Any, ...] | None = None
        self._last_save_time = time.monotonic()
        self._provenance: dict[str, Any] | None = None
        self._metrics_hash = _PrefixHash()
        self._monitor_warned = False
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
        # A state no checkpoint can hold: say so now, not at the first save (every rank
        # captures: the capture is collective).
        check_plugin_states(run, run.capture_state())
        if run.is_primary:
            self.store.cleanup()
        self._last_save_time = time.monotonic()

    @hookimpl(trylast=True)
    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        if self._step_due(run, global_step):
            self._save(run, "step")
        elif self._time_due(run):
            self._save(run, "time")
        self._emit("step", global_step)

    @hookimpl(trylast=True)
    def on_end_val_epoch(self, run: RunContext, global_step: int, key: str) -> None:
        self._emit("val", global_step, key)

    @hookimpl(trylast=True)
    def on_end_train_epoch(self, run: RunContext, epoch: int, global_step: int) -> None:
        if self.params.every_epoch and not (self.params.save_last and self._ends_here(run, at_epoch_end=True)):
            self._save(run, "epoch")
        self._emit("epoch", global_step, str(epoch))

    @hookimpl(trylast=True)
    def on_interrupt(self, run: RunContext, signal: str) -> None:
        """Save where the signal stopped the run (the core stops it right after)."""
        if not self.params.on_signal:
            return
        self._save(run, "signal")
        self._wait(run)  # the process stops right after: the write must be done
        entry = self.last_saved
        where = entry.path if entry is not None else self.store.root
        # The run directory holds the recipe with its overrides and the local plugins: the
        # command continues exactly this run, whatever its command line was.
        run.stop_reason = f"{signal}: saved {where.name} at step {run.global_step}; continue with {run.resume_command}"
        self._say(
            f"received {signal}: saved {where} at step {run.global_step}; stopping. Continue with: {run.resume_command}"
        )

    @hookimpl(trylast=True)
    def on_end_train(self, run: RunContext) -> None:
        if self.params.save_last and not run.interrupted:
            self._save(run, "end")

    @hookimpl
    def teardown(self, run: RunContext) -> None:
        """Wait for a background write: the process never exits with one in flight."""
        try:
            with self._errors(run):
                self.saver.close()
        finally:
            self._close_beacon()

    def _close_beacon(self) -> None:
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

    def _time_due(self, run: RunContext) -> bool:
        """Whether ``every_minutes`` has passed since the last save, the same on every rank.

        Clocks differ between processes, so with several the flag is summed over the ranks:
        one small collective per step, only when ``every_minutes`` is set.
        """
        minutes = self.params.every_minutes
        if not minutes:
            return False
        due = time.monotonic() - self._last_save_time >= minutes * 60
        if run.backend.world_size > 1:
            import torch

            flag = torch.tensor([float(due)], dtype=torch.float64, device=run.device)
            due = bool(run.backend.all_reduce_sum(flag).item() > 0)
        return due

    def _save(self, run: RunContext, reason: str) -> None:
        """Save now unless this exact position is already saved. Every rank takes the same
        decision; the primary writes (and prunes), every rank its shards of a sharded state.
        Synchronous saves end at a barrier; an asynchronous one returns once the state is
        copied to host memory (:attr:`last_saved` is set when its write commits)."""
        position = run.position()
        if position == self._position:
            return
        self._position = position
        state = run.capture_state()  # collective: every rank's pending losses are gathered
        if self.saver.asynchronous:  # fail here, not in the background, on a state no checkpoint holds
            check_plugin_states(run, state)
        if self._provenance is None and run.is_primary:
            self._provenance = provenance.collect(run)
        meta = self._meta(run, reason, state) if run.is_primary else {}
        job = Job(state, run.global_step, meta, self._provenance, run.is_primary, committed=self._committed)
        with self._errors(run):
            self.saver.save(job)
        if not self.saver.asynchronous and run.backend.world_size > 1:
            run.backend.barrier()
        self._last_save_time = time.monotonic()

    def _committed(self, entry: Entry) -> None:
        """After a commit (on the primary, maybe in the background): retention."""
        self.last_saved = entry
        p = self.params
        self.store.prune(p.keep_last, p.keep_best, p.monitor, p.mode)

    def _wait(self, run: RunContext) -> None:
        """Wait for the background write in flight, if any (raising its error)."""
        with self._errors(run):
            self.saver.wait()

    @contextlib.contextmanager
    def _errors(self, run: RunContext) -> Iterator[None]:
        """A write's failures as users read them: the state key and plugin, or the path."""
        try:
            yield
        except CodecError as exc:
            raise unstorable(run, exc) from None
        except OSError as exc:
            raise RunnerError(f"checkpoint: saving to {self.store.root} failed: {exc}") from exc

    def _meta(self, run: RunContext, reason: str, state: dict[str, Any]) -> dict[str, Any]:
        offset = int(state["metrics_offset"])
        meta = {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "reason": reason,
            "step": run.global_step,
            "epoch": run.epoch,
            "batch_in_epoch": run.batch_in_epoch,
            "epoch_done": bool(run.epoch_done),
            "samples_seen": run.samples_seen,
            # Hashed by the writer (in the background when asynchronous): the prefix never changes.
            "metrics_file": functools.partial(self._metrics_file, run.run_dir / METRICS_FILE, offset),
            "monitor": self._monitor(run),
            "world_size": run.backend.world_size,
        }
        return meta

    def _metrics_file(self, path: Path, offset: int) -> dict[str, Any]:
        return {"offset": offset, "sha256": self._metrics_hash.at(path, offset)}

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

    # -- resume ----------------------------------------------------------------------

    def restore(self, run: RunContext, source: str | None) -> bool:
        """Load the newest valid checkpoint (or ``source``) into ``run``; False if there is none.

        Damaged checkpoints are reported file by file and skipped for the previous one,
        then moved into ``checkpoints/damaged/`` once a good one is loaded (see
        :meth:`_tidy`); a ``latest`` that is not a regular file is set aside too, with one
        warning, and every checkpoint is tried. When every checkpoint is damaged, or
        ``source`` names a damaged one, the error lists what was wrong. A recipe changed in
        ways that break exactness stops here unless ``--allow-recipe-change`` was given.
        """
        self._primary = run.is_primary
        candidates, explicit = self._candidates(source, repair=run.is_primary)
        if not candidates:
            return False
        damaged: list[CorruptCheckpoint] = []
        skipped: list[Entry] = []
        for entry in candidates:
            try:
                # The primary hashes the shards of every rank; the others check their sizes.
                loaded = checkpoint.load(entry.path, verify_shards=run.is_primary)
                failure = None
            except CorruptCheckpoint as exc:
                failure = exc
            failure = self._agree(run, entry, failure)
            if failure is not None:
                exc = failure
                if explicit:
                    raise CheckpointError([f"cannot resume from {entry.path}:", *exc.lines()[1:]]) from None
                damaged.append(exc)
                skipped.append(entry)
                self._say(f"warning: {entry.path} is damaged and is skipped:")
                for problem in exc.problems:
                    self._say(f"  {problem}")
                continue
            if damaged:
                self._say(f"falling back to {entry.path} (step {loaded.manifest.get('step')})")
            self._check_provenance(run, loaded)
            self._apply(run, loaded)
            if run.is_primary and not explicit:
                self._tidy(skipped, entry)
            if run.backend.world_size > 1:
                run.backend.barrier()
            return True
        lines = [f"no valid checkpoint to resume from in {self.store.root}; every one is damaged:"]
        for failure in damaged:
            lines += [f"  {failure.name}:", *(f"    {p}" for p in failure.problems)]
        raise CheckpointError(lines)

    def _tidy(self, damaged: list[Entry], resumed: Entry) -> None:
        """After a resume that skipped ``damaged`` checkpoints or could not follow ``latest``
        (this run's own directory only): move the damaged ones into ``damaged/``, so
        retention neither counts them nor lets them push out good ones and a new save at
        their step gets the normal name, and point ``latest`` at the one resumed from."""
        if resumed.path.parent.resolve() != self.store.root.resolve():
            return  # another run's checkpoints (--resume OTHER_RUN): not ours to change
        for entry in damaged:
            try:
                moved = self.store.set_aside(entry.path)
            except OSError as exc:
                self._say(f"warning: could not move damaged {entry.name} aside: {exc}")
                continue
            self._say(
                f"moved damaged {entry.name} to {moved} (retention ignores it there; delete it when no longer needed)"
            )
        if self.store.latest_name() != resumed.name:
            try:
                self.store.point_latest(resumed.name)
            except OSError as exc:
                self._say(f"warning: could not point {self.store.root / LATEST} at {resumed.name}: {exc}")

    def _candidates(self, source: str | None, repair: bool = False) -> tuple[list[Entry], bool]:
        if source is None:
            candidates, note = self.store.resume_candidates(repair=repair)
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
        own = store.root.resolve() == self.store.root.resolve()
        candidates, note = store.resume_candidates(repair=repair and own)
        if note:
            self._say(f"warning: {note}")
        if not candidates:
            raise RunnerError(f"--resume {source}: no checkpoints in {store.root}")
        return candidates, False

    def _check_provenance(self, run: RunContext, loaded: checkpoint.Loaded) -> None:
        saved = loaded.provenance
        current = provenance.collect(run)
        changes = provenance.run_changes(saved, current)
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
                    f"continue with the run's own recipe and plugins: {run.resume_command}",
                    "or pass --allow-recipe-change to resume anyway (the result will differ from an uninterrupted run)",
                ]
            )
        if breaking:
            self._say("resuming anyway (--allow-recipe-change): the run will not match an uninterrupted one")

    def _agree(self, run: RunContext, entry: Entry, failure: CorruptCheckpoint | None) -> CorruptCheckpoint | None:
        """With several processes, a checkpoint one rank found damaged is damaged for all
        (they must skip it together: only the primary hashes the shards)."""
        if run.backend.world_size == 1:
            return failure
        import torch

        flag = torch.tensor([0.0 if failure is None else 1.0], dtype=torch.float64, device=run.device)
        if run.backend.all_reduce_sum(flag).item() == 0:
            return None
        # Every rank reports what the primary found (it hashed every file), whichever fails first.
        problems = [failure.problems if failure is not None and run.is_primary else None]
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.broadcast_object_list(problems, src=0)
        return CorruptCheckpoint(entry.name, problems[0] or (failure.problems if failure else ["damaged"]))

    def _apply(self, run: RunContext, loaded: checkpoint.Loaded) -> None:
        state = dict(loaded.state)
        if codec.shard_refs(state) or codec.has_shards(dict(run.model.named_parameters())):
            state = self._read_shards(run, loaded, state)
        state["metrics_offset"] = self._align_metrics(run, loaded)
        try:
            run.restore_state(state)
        except RunnerError as exc:
            raise RunnerError(f"checkpoint {loaded.path} does not fit this run: {exc}") from exc
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
            raise RunnerError(
                f"checkpoint {loaded.path} does not fit this run: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc
        self._position = run.position()
        self._metrics_hash = _PrefixHash()
        if run.is_primary:
            self._metrics_hash.at(run.run_dir / METRICS_FILE, int(state["metrics_offset"]))
        self._say(f"resumed from {loaded.path} (step {run.global_step}, epoch {run.epoch})")

    def _read_shards(self, run: RunContext, loaded: checkpoint.Loaded, state: dict[str, Any]) -> dict[str, Any]:
        """Fill a sharded checkpoint's tensors into this run's shards (any number of processes:
        torch.distributed.checkpoint reshards). Every rank calls it."""
        from runner_checkpoint import sharded

        keys = codec.shard_refs(state)
        ours = codec.has_shards(dict(run.model.named_parameters()))
        written = loaded.manifest.get("world_size", "?")
        if not ours:
            raise RunnerError(
                f"checkpoint {loaded.path} holds a sharded model (written by {written} processes of a sharding "
                'backend such as fsdp); resume it with that backend ([run] backend = "fsdp")'
            )
        if not keys:
            raise RunnerError(
                f"checkpoint {loaded.path} holds a whole model, not shards; resume it with the backend that wrote "
                "it (ddp or single), not a sharding one"
            )
        if any(key.startswith("optimizers/") for key in keys):
            sharded.init_optimizer_state(run.optimizers)  # its state has shards to read into
        template = run.capture_state()  # collective; this run's shards, sharded for this world
        _, _, targets = codec.encode_sharded(template)
        missing, unexpected = sorted(set(keys) - set(targets)), sorted(set(targets) - set(keys))
        if missing or unexpected:
            parts = [f"this run has no {', '.join(missing[:3])}"] if missing else []
            parts += [f"the checkpoint has no {', '.join(unexpected[:3])}"] if unexpected else []
            raise RunnerError(f"checkpoint {loaded.path} does not fit this run: {'; '.join(parts)}")
        try:
            sharded.read(loaded.path, {key: targets[key] for key in keys})
        except sharded.ShardError as exc:
            raise CheckpointError([f"cannot resume from {loaded.path}:", f"  {exc}"]) from None
        return dict(codec.fill_shards(state, targets))

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
            with open_regular(source) as file:
                prefix = read_exactly(file, offset)
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
