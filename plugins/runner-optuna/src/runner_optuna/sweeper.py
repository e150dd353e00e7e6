"""Drive an Optuna study with ask/tell: each trial a normal run, reported values prune.

Choice axes become categorical parameters over the values' indices (Optuna's categories
must be scalars; recipe values may be arrays or tables), intervals float or int
distributions. Trials already in the sweep's ledger are added to the study first, so a
restarted sweep keeps what TPE learned and runs only the rest of its budget.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from runner import Axis, RunnerError, Sweep, Trial

if TYPE_CHECKING:
    from runner_optuna.components import Optuna


def _distribution(axis: Axis) -> Any:
    import optuna

    if axis.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(range(len(axis.values))))
    if axis.kind == "int":
        return optuna.distributions.IntDistribution(int(axis.low), int(axis.high))
    return optuna.distributions.FloatDistribution(axis.low, axis.high, log=axis.kind == "loguniform")


def _to_values(axes: tuple[Axis, ...], params: dict[str, Any]) -> dict[str, Any]:
    return {axis.key: axis.values[params[axis.key]] if axis.kind == "choice" else params[axis.key] for axis in axes}


def _to_params(axes: tuple[Axis, ...], values: dict[str, Any]) -> dict[str, Any] | None:
    """The Optuna parameters of a recorded trial, or None when it is not from this plan."""
    params: dict[str, Any] = {}
    for axis in axes:
        if axis.key not in values:
            return None
        value = values[axis.key]
        if axis.kind == "choice":
            if value not in axis.values:
                return None
            params[axis.key] = axis.values.index(value)
        else:
            params[axis.key] = value
    return params


class OptunaSweeper:
    """The ``optuna`` sweeper (see :class:`runner_optuna.components.Optuna`)."""

    def __init__(self, config: Optuna) -> None:
        self.config = config

    def study(self, sweep: Sweep) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if self.config.sampler == "tpe":
            sampler: Any = optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=self.config.startup_trials)
        else:
            sampler = optuna.samplers.RandomSampler(seed=sweep.seed)
        pruner: Any = (
            optuna.pruners.MedianPruner(
                n_startup_trials=self.config.startup_trials, n_warmup_steps=self.config.warmup_steps
            )
            if self.config.pruner == "median"
            else optuna.pruners.NopPruner()
        )
        direction = "maximize" if sweep.maximize else "minimize"
        return optuna.create_study(direction=direction, sampler=sampler, pruner=pruner)

    def replay(self, study: Any, sweep: Sweep, trials: list[Trial]) -> None:
        """Add the ledger's trials to the study."""
        import optuna

        distributions = {axis.key: _distribution(axis) for axis in sweep.axes}
        states = {
            "finished": optuna.trial.TrialState.COMPLETE,
            "pruned": optuna.trial.TrialState.PRUNED,
            "failed": optuna.trial.TrialState.FAIL,
        }
        for trial in trials:
            params = _to_params(sweep.axes, trial.params)
            if params is None:
                continue
            state = states[trial.status]
            if state == optuna.trial.TrialState.COMPLETE and trial.value is None:
                state = optuna.trial.TrialState.FAIL
            study.add_trial(
                optuna.trial.create_trial(
                    params=params,
                    distributions=distributions,
                    value=trial.value if state == optuna.trial.TrialState.COMPLETE else None,
                    intermediate_values=dict(trial.reports),
                    state=state,
                )
            )

    def run(self, sweep: Sweep) -> None:
        import optuna

        if sweep.trials is None:
            raise RunnerError("the optuna sweeper needs [sweep] trials = N (its budget)")
        study = self.study(sweep)
        done = sweep.finished()
        self.replay(study, sweep, done)
        distributions = {axis.key: _distribution(axis) for axis in sweep.axes}
        lock = threading.Lock()
        left = [max(0, sweep.trials - len(done))]
        errors: list[BaseException] = []

        def worker() -> None:
            while True:
                with lock:
                    if left[0] <= 0 or errors:
                        return
                    left[0] -= 1
                    trial = study.ask(distributions)

                def report(step: int, value: float, trial: Any = trial) -> bool:
                    with lock:
                        trial.report(value, step)
                        return not trial.should_prune()

                try:
                    result = sweep.run_trial(_to_values(sweep.axes, trial.params), report=report)
                except BaseException as exc:
                    with lock:
                        errors.append(exc)
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    return
                with lock:
                    if result.status == "finished" and result.value is not None:
                        study.tell(trial, result.value)
                    elif result.status == "pruned":
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    else:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(sweep.parallel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
