"""The ``ray`` sweeper (Ray Tune with ASHA), declared once: torch- and Ray-free, read at validation.

``build`` hands the validated declaration to :class:`runner_ray.tune_sweeper.RayTuneSweeper`,
which imports Ray Tune only when the sweep runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import at_least, component, param

if TYPE_CHECKING:
    from runner_ray.tune_sweeper import RayTuneSweeper


def _positive(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and value > 0 else f"must be greater than 0, found {value!r}"


def _above_one(value: Any) -> str | None:
    return None if isinstance(value, (int, float)) and value > 1 else f"must be greater than 1, found {value!r}"


@component
class RayTune:
    """Ray Tune on a local Ray instance: each trial a Tune trial running a normal ``runner run``,
    stopped early by ASHA from the validation metric it reports.

    Trials are drawn from the ``[sweep]`` axes (``search = "random"``, seeded by ``[sweep]
    seed`` and the trial number) or run every combination (``"grid"``), ``parallel`` at a
    time. Each reports the sweep's metric at every validation; ASHA (asynchronous successive
    halving) stops a trial whose value at a rung (``grace_period`` x ``reduction_factor``^k
    optimizer steps) is not among the best ``1/reduction_factor`` of the trials recorded
    there. Trials on the sweep's ledger are not run again, and their values are given to
    ASHA first, so a restarted sweep keeps its cut-offs.
    """

    search: Literal["random", "grid"] = param(
        "random",
        doc='"random": [sweep] trials draws from the axes (a restarted sweep draws the same); '
        '"grid": every combination of finite axes, in order ([sweep] trials keeps the first N).',
    )
    scheduler: Literal["asha", "none"] = param(
        "asha", doc='"asha": stop trials early (asynchronous successive halving); "none": run every trial to its end.'
    )
    grace_period: int = param(
        1, doc="Optimizer steps a trial runs before ASHA may stop it (its first rung).", check=at_least(1)
    )
    reduction_factor: float = param(
        4.0,
        doc="ASHA's rungs are grace_period x reduction_factor^k steps apart, and at each only the best "
        "1/reduction_factor of the trials recorded there continue.",
        check=_above_one,
    )
    cpus_per_trial: float = param(
        1.0,
        doc="CPUs Ray reserves for each trial (its runner run gets OMP_NUM_THREADS to match).",
        check=_positive,
    )
    gpus_per_trial: float = param(
        0.0, doc="GPUs Ray reserves for each trial (its runner run sees only those).", check=at_least(0)
    )
    local_cpus: int | None = param(
        None,
        doc="CPUs of the local Ray instance (default: parallel x cpus_per_trial, so `parallel` trials run at once).",
        check=at_least(1),
    )

    def build(self) -> RayTuneSweeper:
        from runner_ray.tune_sweeper import RayTuneSweeper

        return RayTuneSweeper(self)
