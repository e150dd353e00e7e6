"""The ``optuna`` sweeper, declared once (Optuna-free: ``build`` imports it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runner import at_least, component, param

if TYPE_CHECKING:
    from runner_optuna.sweeper import OptunaSweeper


@component
class Optuna:
    """Optuna's TPE search (or seeded random), pruning trials from their validation metric.

    Each trial reports the sweep's metric at every validation; a trial whose value is
    worse than the median of earlier trials at the same step is stopped (``pruner =
    "median"``). The study is rebuilt from the sweep's trial ledger, so a restarted sweep
    continues where it stopped.
    """

    sampler: Literal["tpe", "random"] = param("tpe", doc="How trials are proposed: TPE, or random draws.")
    pruner: Literal["median", "none"] = param("median", doc="Stop trials worse than the median at a step, or never.")
    startup_trials: int = param(
        2, doc="Trials before TPE models the results and before the pruner prunes.", check=at_least(0)
    )
    warmup_steps: int = param(0, doc="Optimizer steps of a trial before it may be pruned.", check=at_least(0))

    def build(self) -> OptunaSweeper:
        from runner_optuna.sweeper import OptunaSweeper

        return OptunaSweeper(self)
