"""``ema``: an exponential moving average of the model's weights.

After every ``every_n_steps`` optimizer steps the average moves towards the live weights:
``ema = decay_n * ema + (1 - decay_n) * weights``, with ``decay_n = min(decay, (1 + n) /
(10 + n))`` during warm-up (n: updates so far), so early averages are not dominated by
the random initial weights. Every floating-point entry of the model's state dict is
averaged (batch-norm statistics too); integer buffers are copied.

Validation and test run with the averaged weights: they are swapped into the model when
a loader's evaluation begins and the training weights swapped back when it ends, so
training never sees them. The average is part of the run state (``get_state``): it is saved
in every checkpoint next to the model's weights and restored on resume, so a resumed run
continues exactly; when training ends the average is also in ``summary.json``'s extras
(as its update count and decay).
"""

from __future__ import annotations

from typing import Any

import torch

from runner import RunContext
from runner_callbacks._model import unwrapped


class EMA:
    """Keeps the average, swaps it in for evaluation and back, and checkpoints it."""

    def __init__(self, decay: float = 0.999, warmup: bool = True, every_n_steps: int = 1, evaluate: bool = True):
        self.decay = decay
        self.warmup = warmup
        self.every_n_steps = every_n_steps
        self.evaluate = evaluate
        self.updates = 0
        self.shadow: dict[str, torch.Tensor] | None = None
        self._backup: dict[str, torch.Tensor] | None = None

    # -- the average -----------------------------------------------------------------

    @staticmethod
    def _live(run: RunContext) -> dict[str, torch.Tensor]:
        # state_dict() tensors share storage with the parameters and buffers: copy_ into
        # them changes the model in place.
        return dict(unwrapped(run.model).state_dict())

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    def on_begin_train(self, run: RunContext) -> None:
        if self.shadow is None:  # fresh run (a resume restored it in update_state)
            self.shadow = {name: t.detach().clone() for name, t in self._live(run).items()}

    @torch.no_grad()
    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        if global_step % self.every_n_steps or self.shadow is None:
            return
        decay = self.current_decay()
        live = self._live(run)
        floats = [name for name, t in self.shadow.items() if t.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.shadow[n] for n in floats], [live[n].detach() for n in floats], 1.0 - decay)
        for name, tensor in self.shadow.items():
            if not tensor.is_floating_point():
                tensor.copy_(live[name])
        self.updates += 1

    # -- evaluation with the average ---------------------------------------------------

    @torch.no_grad()
    def _swap_in(self, run: RunContext) -> None:
        if not self.evaluate or self.shadow is None or self._backup is not None:
            return
        live = self._live(run)
        self._backup = {name: t.detach().clone() for name, t in live.items()}
        for name, tensor in live.items():
            tensor.copy_(self.shadow[name])

    @torch.no_grad()
    def _swap_back(self, run: RunContext) -> None:
        if self._backup is None:
            return
        for name, tensor in self._live(run).items():
            tensor.copy_(self._backup[name])
        self._backup = None

    def on_begin_val_epoch(self, run: RunContext) -> None:
        self._swap_in(run)

    def on_end_val_epoch(self, run: RunContext) -> None:
        self._swap_back(run)

    def on_begin_test_epoch(self, run: RunContext) -> None:
        self._swap_in(run)

    def on_end_test_epoch(self, run: RunContext) -> None:
        self._swap_back(run)

    def teardown(self, run: RunContext) -> None:
        self._swap_back(run)  # an evaluation that raised: leave the training weights in place

    def on_end_train(self, run: RunContext) -> None:
        run.add_summary("ema", {"decay": self.decay, "updates": self.updates, "evaluate": self.evaluate})

    # -- checkpoints -------------------------------------------------------------------

    def get_state(self) -> dict[str, Any] | None:
        if self.shadow is None:
            return None
        return {"updates": self.updates, "weights": dict(self.shadow)}

    def update_state(self, run: RunContext, state: dict[str, Any]) -> None:
        live = self._live(run)
        saved = state.get("weights") or {}
        missing = sorted(set(live) - set(saved))
        if missing:
            from runner import RunnerError

            raise RunnerError(
                f"ema: the checkpoint's averaged weights lack {len(missing)} of the model's entries "
                f"({', '.join(missing[:3])}...): was the model changed? Resume with the model it was saved with"
            )
        self.shadow = {name: saved[name].to(device=t.device, dtype=t.dtype).clone() for name, t in live.items()}
        self.updates = int(state.get("updates", 0))
