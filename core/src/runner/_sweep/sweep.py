"""The :class:`Sweep` a sweeper receives: the plan, and running trials through the ledger."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from runner._contract.sweep import Axis
from runner._sweep import ledger
from runner._sweep.ledger import Trial
from runner._sweep.metric import maximize
from runner._sweep.trial import Report, TrialProcess, sigterm_status, trial_command

_OUTPUT = threading.Lock()


def toml_value(value: Any) -> str:
    """``value`` as an inline TOML value on one line, for a trial's ``-o key=value``."""
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)  # JSON strings and numbers are TOML ones
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))  # dates and times: as text


def shown_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={toml_value(value)}" for key, value in params.items())


@attrs.define
class Sweep:
    """One search over runs of a recipe, as a sweeper sees it (public: ``runner.Sweep``).

    The plan: ``axes`` (what varies, :class:`runner.Axis`), ``trials`` (the budget; None:
    every grid point), ``parallel`` (trials at once), ``metric`` and :attr:`maximize`
    (what is optimized; ``metric`` may be ``""``: each trial's first validation metric,
    accuracy before loss), ``seed``, and ``params``, the sweeper's own parameters. Trials run
    with :meth:`run_trial` or :meth:`run_points`; both go through the sweep directory's
    ledger, so a trial that already ended is returned without running again. The object
    is plain data: it pickles, so a sweeper may call :meth:`run_trial` from other processes.
    """

    recipe: str
    directory: Path
    axes: tuple[Axis, ...]
    trials: int | None = None
    parallel: int = 1
    metric: str = ""
    mode: str = "auto"
    seed: int = 0
    params: dict[str, Any] = attrs.Factory(dict)
    overrides: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    cwd: str = "."
    quiet: bool = False

    @property
    def maximize(self) -> bool:
        """Whether a larger metric is better (``mode``, or by the metric's name for ``auto``)."""
        return maximize(self.metric or "accuracy", self.mode)

    def ledger(self) -> dict[int, Trial]:
        """Every trial on record, by number."""
        return ledger.read_ledger(self.directory)

    def finished(self) -> list[Trial]:
        """The trials that ended (finished, pruned or failed), by number: a restarted sweep skips them."""
        return [trial for _, trial in sorted(self.ledger().items()) if trial.done]

    def say(self, line: str) -> None:
        """A progress line on stderr."""
        if not self.quiet:
            with _OUTPUT:
                print(f"sweep: {line}", file=sys.stderr, flush=True)

    def trial_dir(self, number: int) -> Path:
        return self.directory / f"trial-{number:04d}"

    def _allocate(self) -> tuple[int, Path]:
        """The next free trial number, its directory created (atomically: several processes may ask)."""
        taken = set(self.ledger())
        taken |= {int(p.name[6:]) for p in self.directory.glob("trial-*") if p.name[6:].isdigit()}
        number = max(taken, default=-1) + 1
        while True:
            path = self.trial_dir(number)
            try:
                path.mkdir()
                return number, path
            except FileExistsError:
                number += 1

    def run_trial(self, params: Mapping[str, Any], *, number: int | None = None, report: Report | None = None) -> Trial:
        """Run one trial with ``params`` (``{"optimizer.lr": 0.01}``) and record how it ended.

        ``number``: the trial's place in a plan fixed in advance (a grid): when the ledger
        holds it, it is returned at once; None: the next free number. ``report(step,
        value)`` receives each validation value of the metric; returning False stops the
        trial (status ``pruned``); an exception it raises stops the trial, which is recorded
        as pruned, and propagates.
        """
        if number is not None:
            earlier = self.ledger().get(number)
            if earlier is not None and earlier.done:
                self.say(f"trial {number}: {earlier.status} in an earlier session, not run again")
                return earlier
            run_dir = self.trial_dir(number)
            if run_dir.exists():  # started by a sweep that was stopped before it ended
                shutil.rmtree(run_dir)
            run_dir.mkdir(parents=True)
        else:
            number, run_dir = self._allocate()
        values = dict(params)
        overrides = [*self.overrides, *(f"{key}={toml_value(value)}" for key, value in values.items())]
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        self.say(f"trial {number}: {shown_params(values)}")
        process = TrialProcess(
            trial_command(self.recipe, self.plugins, overrides, run_dir),
            run_dir,
            logs / f"trial-{number:04d}.log",
            Path(self.cwd),
        )
        try:
            status, reports, metric = process.wait(self.metric, report)
        except Exception:
            self._record(Trial(number, values, "pruned", None, str(run_dir), note="stopped by the sweeper"))
            raise
        better = max if maximize(metric or "accuracy", self.mode) else min
        value = better(v for _, v in reports) if reports else None
        if status == 0 and not process.stopped:
            outcome, note = "finished", ""
        elif process.stopped and status in (0, sigterm_status()):
            outcome, note = "pruned", "stopped by the sweeper"
        else:
            outcome, note = "failed", process.last_error() or f"exit status {status}"
        trial = Trial(number, values, outcome, value, str(run_dir), tuple(reports), note, metric)
        self._record(trial)
        return trial

    def _record(self, trial: Trial) -> None:
        ledger.append(self.directory, trial)
        shown = "-" if trial.value is None else f"{trial.value:.6g}"
        note = f" ({trial.note})" if trial.note else ""
        self.say(f"trial {trial.number}: {trial.status}, {trial.metric or self.metric or 'metric'} {shown}{note}")

    def run_points(self, points: Iterable[tuple[int, Mapping[str, Any]]]) -> list[Trial]:
        """Run numbered points of a plan fixed in advance, ``parallel`` at a time; those the
        ledger holds are skipped. Returns every point's trial, in order."""
        chosen = list(points)
        if self.parallel <= 1:
            return [self.run_trial(params, number=number) for number, params in chosen]
        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            futures = [pool.submit(self.run_trial, params, number=number) for number, params in chosen]
            return [future.result() for future in futures]

    def best(self) -> Trial | None:
        """The finished (or pruned) trial with the best value, or None."""
        scored = [t for t in self.finished() if t.value is not None and t.status != "failed"]
        if not scored:
            return None
        metric = self.metric or next((t.metric for t in scored if t.metric), "")
        larger = maximize(metric or "accuracy", self.mode)
        return (max if larger else min)(scored, key=lambda t: t.value if t.value is not None else 0.0)
