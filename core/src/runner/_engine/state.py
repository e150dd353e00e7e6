"""The complete state of a run, for checkpointers: capture it, restore it exactly.

Tensors stay tensors (model, optimizer, scheduler, RNG); everything else is plain JSON
data, so a checkpointer can store it without pickle.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from runner._contract.context import RunContext

STATE_VERSION = 1


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and every CUDA device) RNG states."""
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
        "numpy": {
            "key": np_state[1].tolist(),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(n["key"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    # A copy: torch rejects (or worse) a byte tensor that is a view into a larger buffer.
    torch.set_rng_state(state["torch"].clone())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plugin_states(run: RunContext) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for result in run.plugins.call("get_state", run=run):
        if result:
            merged.update(result)
    return merged


def capture(run: RunContext) -> dict[str, Any]:
    """Everything needed to continue ``run`` exactly where it is now."""
    trainer = run.extras["trainer"]
    unwrapped = getattr(run.model, "module", run.model)
    state: dict[str, Any] = {
        "version": STATE_VERSION,
        "model": unwrapped.state_dict(),
        "optimizers": [o.state_dict() for o in run.optimizers],
        "schedulers": [s.state_dict() for s in run.schedulers],
        "scaler": run.scaler.state_dict() if run.scaler is not None else None,
        "rng": rng_state(),
        "counters": {
            "epoch": run.epoch,
            "global_step": run.global_step,
            "batch_in_epoch": run.batch_in_epoch,
            "samples_seen": run.samples_seen,
            "epoch_done": trainer.epoch_done,
            "last_val_step": trainer.last_val_step,
        },
        "pending_losses": torch.stack(trainer.pending_losses) if trainer.pending_losses else torch.zeros(0),
        "loader": run.train_loader.state_dict() if run.train_loader is not None else {},
        "metrics_offset": run.extras["metrics_offset"](),
        "last_metrics": run.last_metrics,
        "plugins": _plugin_states(run),
    }
    return state


def restore(run: RunContext, state: dict[str, Any]) -> None:
    """Load a state produced by :func:`capture` into ``run``."""
    trainer = run.extras["trainer"]
    getattr(run.model, "module", run.model).load_state_dict(state["model"])
    for optimizer, saved in zip(run.optimizers, state["optimizers"], strict=False):
        optimizer.load_state_dict(saved)
    for scheduler, saved in zip(run.schedulers, state["schedulers"], strict=False):
        scheduler.load_state_dict(saved)
    if run.scaler is not None and state.get("scaler") is not None:
        run.scaler.load_state_dict(state["scaler"])
    counters = state["counters"]
    run.epoch = int(counters["epoch"])
    run.global_step = int(counters["global_step"])
    run.batch_in_epoch = int(counters["batch_in_epoch"])
    run.samples_seen = int(counters["samples_seen"])
    trainer.epoch_done = bool(counters["epoch_done"])
    trainer.last_val_step = int(counters["last_val_step"])
    trainer.pending_losses[:] = list(state["pending_losses"].unbind())
    run.last_metrics = {k: dict(v) for k, v in state.get("last_metrics", {}).items()}
    run.extras["truncate_metrics"](int(state["metrics_offset"]))
    set_rng_state(state["rng"])
    run.plugins.call("update_state", run=run, state=state.get("plugins", {}))
