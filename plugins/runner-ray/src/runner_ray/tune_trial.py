"""One Tune trial (a Ray actor): a normal ``runner run`` of the sweep whose validation values are Tune results.

:meth:`runner.Sweep.run_trial` runs the trial in a thread of the actor and hands each
validation value to :meth:`RunnerTrial._report`, which passes it to Tune (the next
:meth:`RunnerTrial.step` returns it) and waits for Tune's answer: the following ``step``
call means continue; :meth:`RunnerTrial.cleanup`, which Tune calls when ASHA stops the
trial, means stop. The run then stops at the end of its step and is recorded on the
ledger as pruned before the actor goes, so ``cleanup`` waits for that.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from runner import Sweep, Trial
from runner_ray.tune_space import OBJECTIVE, STEP, import_tune, objective

tune = import_tune()


class RunnerTrial(tune.Trainable):  # type: ignore[misc,name-defined]
    """Runs trial ``config["trial"]`` of the ``plan`` (trial number → recipe values) of ``sweep``
    (the driver prints the sweep's progress, so ``sweep.quiet`` is set)."""

    def setup(self, config: dict[str, Any], sweep: Sweep, plan: dict[int, dict[str, Any]]) -> None:
        number = int(config["trial"])
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._decisions: queue.Queue[bool] = queue.Queue()
        self._stopping = threading.Event()
        self._waiting = False  # a report is waiting for Tune's decision
        self._maximize = sweep.maximize
        self._last: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._run, args=(sweep, plan[number], number), name=f"trial-{number}", daemon=True
        )
        self._thread.start()

    def _run(self, sweep: Sweep, params: dict[str, Any], number: int) -> None:
        try:
            trial = sweep.run_trial(params, number=number, report=self._report)
        except BaseException as exc:
            self._events.put(("error", exc))
        else:
            self._events.put(("end", trial))

    def _report(self, step: int, value: float) -> bool:
        """A validation value of the run (its thread): passed to Tune; True to go on."""
        if self._stopping.is_set():
            return False
        self._events.put(("report", (step, value)))
        return self._decisions.get()

    def step(self) -> dict[str, Any]:
        if self._waiting:  # Tune asks for more: the last report may go on
            self._waiting = False
            self._decisions.put(True)
        kind, payload = self._events.get()
        if kind == "error":
            raise payload
        if kind == "report":
            step, value = payload
            self._waiting = True
            self._last = {STEP: step, OBJECTIVE: objective(value, self._maximize)}
            return dict(self._last)
        trial: Trial = payload
        return {**self._last, "trial_status": trial.status, "done": True}

    def cleanup(self) -> None:
        # Tune stopped the trial (ASHA) or it ended: a report waiting, or one about to
        # wait, gets "stop"; then the run is on the ledger before the actor exits.
        self._stopping.set()
        self._waiting = False
        self._decisions.put(False)
        self._thread.join()
