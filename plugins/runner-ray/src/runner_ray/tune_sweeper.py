"""Drive a Ray Tune experiment over the sweep's trials on a local Ray instance.

The plan is fixed by trial number (:mod:`runner_ray.tune_space`); the trials the ledger
holds are left out and their reports are given to ASHA first, so a restarted sweep runs
only the rest, against the same cut-offs. Tune runs each remaining trial as a
:class:`runner_ray.tune_trial.RunnerTrial` actor, ``parallel`` at a time, and ASHA stops
those that fall behind. Tune's own state goes to a temporary directory: the sweep
directory and its ledger are the record.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runner import RunnerError, Sweep, Trial
from runner_ddp.backend import Stopped
from runner_ray.cluster import ray_session, require_ray
from runner_ray.tune_space import OBJECTIVE, STEP, grid_trials, import_tune, objective, random_trials

if TYPE_CHECKING:
    from runner_ray.tune_params import RayTune

WHAT = '[sweep] name = "ray"'
#: ASHA's horizon in optimizer steps: rungs up to here (trials are never stopped for reaching it).
HORIZON = 10**9
#: Tune's behaviour for this experiment: Ctrl-C interrupts the sweep (Tune's own handler
#: would stop the trials gracefully, and they would be recorded as pruned rather than run
#: again); a trial's first and last results may lack the metric; every result reaches
#: ASHA at once; no progress tables (the sweep prints its own lines).
TUNE_ENVIRONMENT = {
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    "TUNE_RESULT_BUFFER_LENGTH": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
}


def plan(sweep: Sweep, search: str) -> list[tuple[int, dict[str, Any]]]:
    """The sweep's numbered trials: every grid point, or ``trials`` random draws."""
    if search == "grid":
        return grid_trials(sweep.axes, sweep.trials)
    if sweep.trials is None:
        raise RunnerError(f'{WHAT} with search = "random" needs [sweep] trials = N (the number of draws)')
    return random_trials(sweep.axes, sweep.seed, sweep.trials)


def make_scheduler(scheduler: str, grace_period: int, reduction_factor: float, maximize: bool) -> Any:
    """ASHA over the trials' reported ``objective`` by optimizer ``step`` (or Tune's FIFO: no stopping)."""
    tune = import_tune()
    if scheduler == "none":
        return tune.schedulers.FIFOScheduler()
    return tune.schedulers.ASHAScheduler(
        time_attr=STEP,
        metric=OBJECTIVE,
        mode="max" if maximize else "min",
        max_t=HORIZON,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        stop_last_trials=False,
    )


@dataclasses.dataclass(frozen=True)
class _Recorded:
    """A ledger trial as the scheduler sees it (ASHA keys its rungs by ``trial_id``)."""

    trial_id: str


def replay(scheduler: Any, trials: list[Trial], maximize: bool) -> None:
    """Give the scheduler every report of the trials that ended, as if they had just run:
    ASHA's rungs then hold their values, and new trials are cut against them."""
    for trial in trials:
        if not trial.reports:
            continue
        recorded = _Recorded(f"ledger-{trial.number}")
        scheduler.on_trial_add(None, recorded)
        for iteration, (step, value) in enumerate(trial.reports, start=1):
            result = {STEP: step, OBJECTIVE: objective(value, maximize), "training_iteration": iteration}
            scheduler.on_trial_result(None, recorded, result)
        scheduler.on_trial_remove(None, recorded)


@contextlib.contextmanager
def tune_environment() -> Iterator[None]:
    """:data:`TUNE_ENVIRONMENT` in ``os.environ`` for the block (Tune reads it there), then as before."""
    before = {name: os.environ.get(name) for name in TUNE_ENVIRONMENT}
    os.environ.update(TUNE_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _shown(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={json.dumps(value)}" for key, value in params.items())


def progress_callback(sweep: Sweep, planned: dict[int, dict[str, Any]]) -> Any:
    """A Tune callback printing the sweep's progress lines (the trials' own copies are quiet):
    a trial as it starts, and each new ledger line as it is written."""
    tune = import_tune()

    class Progress(tune.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.shown = set(sweep.ledger())
            self.next_read = 0.0

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            number = int(trial.config["trial"])
            sweep.say(f"trial {number}: {_shown(planned[number])}")

        def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
            if time.monotonic() >= self.next_read:
                self.next_read = time.monotonic() + 0.5
                self.flush()

        def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
            self.flush()

        def flush(self) -> None:
            for number, trial in sorted(sweep.ledger().items()):
                if number in self.shown:
                    continue
                self.shown.add(number)
                value = "-" if trial.value is None else f"{trial.value:.6g}"
                note = f" ({trial.note})" if trial.note else ""
                sweep.say(f"trial {number}: {trial.status}, {trial.metric or sweep.metric or 'metric'} {value}{note}")

    return Progress()


class SweepStopped(RunnerError):
    """A signal stopped the sweep: the running trials were stopped and are not on the ledger."""

    def __init__(self, stopped: Stopped) -> None:
        super().__init__(
            f"{str(stopped).split(':')[0]}: the running trials were stopped; the same command resumes the sweep"
        )
        self.exit_code = stopped.exit_code


class RayTuneSweeper:
    """The ``ray`` sweeper (see :class:`runner_ray.tune_params.RayTune`)."""

    def __init__(self, config: RayTune) -> None:
        self.config = config

    def run(self, sweep: Sweep) -> None:
        config = self.config
        if config.scheduler == "asha" and not sweep.metric and sweep.mode == "auto":
            # Each trial would pick its own first metric; ASHA needs one, and which way is better.
            raise RunnerError(
                f'{WHAT} stops trials by comparing one validation metric: set [sweep] metric (e.g. "main/accuracy" '
                'or "main/loss"), or mode = "max" / "min"'
            )
        planned = plan(sweep, config.search)
        finished = sweep.finished()
        done = {trial.number for trial in finished}
        pending = {number: params for number, params in planned if number not in done}
        if not pending:
            return
        cpus = config.local_cpus or max(1, math.ceil(sweep.parallel * config.cpus_per_trial))
        if config.cpus_per_trial > cpus:
            raise RunnerError(f"[sweep] cpus_per_trial = {config.cpus_per_trial:g} is more than local_cpus = {cpus}")
        require_ray(WHAT)
        import_tune()
        try:
            with tune_environment(), ray_session("local", cpus, WHAT, log_to_driver=False) as ray:
                gpus = float(ray.cluster_resources().get("GPU", 0))
                if config.gpus_per_trial > gpus:
                    raise RunnerError(
                        f"[sweep] gpus_per_trial = {config.gpus_per_trial:g} but Ray finds {gpus:g} GPU(s) here"
                    )
                results = self._fit(sweep, pending, finished)
        except Stopped as stopped:
            raise SweepStopped(stopped) from None
        if results.errors:  # the sweep's own machinery broke, not a run (those are failed trials)
            lines = str(results.errors[0]).strip().splitlines() or [type(results.errors[0]).__name__]
            raise RunnerError(f"{WHAT}: {len(results.errors)} Tune trial(s) raised: {lines[-1]} (traceback above)")

    def _fit(self, sweep: Sweep, pending: dict[int, dict[str, Any]], finished: list[Trial]) -> Any:
        """Tune's experiment over the ``pending`` trials; its ``ResultGrid``."""
        config = self.config
        tune = import_tune()
        from runner_ray.tune_trial import RunnerTrial

        scheduler = make_scheduler(config.scheduler, config.grace_period, config.reduction_factor, sweep.maximize)
        if config.scheduler == "asha":
            replay(scheduler, finished, sweep.maximize)
        quiet = copy.copy(sweep)  # the driver prints the progress lines
        quiet.quiet = True
        trainable = tune.with_resources(
            tune.with_parameters(RunnerTrial, sweep=quiet, plan=pending),
            {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial},
        )
        with tempfile.TemporaryDirectory(prefix="runner-tune-") as storage:
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(sorted(pending))},
                tune_config=tune.TuneConfig(
                    scheduler=scheduler,
                    num_samples=1,
                    max_concurrent_trials=sweep.parallel,
                    reuse_actors=False,
                    trial_name_creator=_trial_name,
                    trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name="sweep",
                    storage_path=storage,
                    verbose=0,
                    checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False),
                    callbacks=[progress_callback(sweep, pending)],
                ),
            )
            return tuner.fit()


def _trial_name(trial: Any) -> str:
    return f"trial-{int(trial.config['trial']):04d}"
