"""The complete state of a run, for checkpointers: capture it, restore it exactly.

Tensors stay tensors (model, optimizer, scheduler, RNG, pending losses); everything else
is plain JSON data, so a checkpointer can store it without pickle. Reached by plugins
through :meth:`runner.RunContext.capture_state` / ``restore_state``.

With several processes, :func:`capture` is collective (every rank calls it at the same
step): the losses each rank accumulated since its last log differ, so all ranks' are
gathered (``pending_losses`` is ``[world_size, n]``) and each rank takes its own row back
on resume. Everything else is the primary's: DDP keeps the model, optimizer and RNG
states equal across ranks.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from runner._contract.errors import RunnerError

if TYPE_CHECKING:
    from runner._contract.context import RunContext
    from runner._plugins.hooks import RunHooks

#: 1: plugin states merged into one dict; 2: namespaced by owner, per-rank pending losses.
STATE_VERSION = 2
#: Counters beyond this are damage (a global step of 1e30), not a long run.
MAX_COUNTER = 2**53


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


def _gather_pending(run: RunContext, losses: list[torch.Tensor]) -> torch.Tensor:
    """Every rank's pending losses as ``[world_size, n]`` (NaN-padded; one row on one process)."""
    mine = torch.stack(losses).detach().double().flatten() if losses else torch.zeros(0, dtype=torch.float64)
    world, rank = run.backend.world_size, run.backend.rank
    if world == 1:
        return mine.float().unsqueeze(0)
    lengths = torch.zeros(world, dtype=torch.float64, device=run.device)
    lengths[rank] = len(mine)
    width = int(run.backend.all_reduce_sum(lengths).max().item())
    rows = torch.zeros(world, width + 1, dtype=torch.float64, device=run.device)
    rows[rank, 0] = len(mine)
    rows[rank, 1 : 1 + len(mine)] = mine.to(run.device)
    gathered = run.backend.all_reduce_sum(rows).cpu()
    counts = gathered[:, 0].long()
    out = torch.full((world, width), math.nan, dtype=torch.float32)
    for r in range(world):
        out[r, : counts[r]] = gathered[r, 1 : 1 + counts[r]].float()
    return out


def capture(
    run: RunContext, hooks: RunHooks, pending_losses: list[torch.Tensor], metrics_offset: int
) -> dict[str, Any]:
    """Everything needed to continue ``run`` exactly where it is now (collective)."""
    unwrapped = getattr(run.model, "module", run.model)
    return {
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
            "epoch_done": run.epoch_done,
            "last_val_step": run.last_val_step,
        },
        "pending_losses": _gather_pending(run, pending_losses),
        "loader": run.train_loader.state_dict() if run.train_loader is not None else {},
        "metrics_offset": metrics_offset,
        "last_metrics": run.last_metrics,
        "plugins": hooks.get_state(run),
    }


def _counter(counters: dict[str, Any], name: str, low: int = 0) -> int:
    value = counters.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise RunnerError(f"checkpoint state: counter {name!r} is {value!r}, not a number")
    if not low <= value <= MAX_COUNTER or int(value) != value:
        raise RunnerError(f"checkpoint state: counter {name!r} = {value!r} is out of range (damaged state?)")
    return int(value)


def checked_counters(state: dict[str, Any]) -> dict[str, Any]:
    """The state's loop counters, range-checked before anything is restored."""
    counters = state.get("counters")
    if not isinstance(counters, dict):
        raise RunnerError("checkpoint state: no loop counters")
    return {
        "epoch": _counter(counters, "epoch"),
        "global_step": _counter(counters, "global_step"),
        "batch_in_epoch": _counter(counters, "batch_in_epoch"),
        "samples_seen": _counter(counters, "samples_seen"),
        "epoch_done": bool(counters.get("epoch_done")),
        "last_val_step": _counter(counters, "last_val_step", low=-1),
        "metrics_offset": _counter(state, "metrics_offset"),
    }


def pending_row(state: dict[str, Any], rank: int, world_size: int) -> list[torch.Tensor]:
    """This rank's pending losses from a saved state (version 1 saved the primary's only)."""
    saved = state["pending_losses"]
    if not isinstance(saved, torch.Tensor):
        raise RunnerError("checkpoint state: pending_losses is not a tensor")
    if state.get("version", 1) < 2 or saved.dim() == 1:
        return list(saved.unbind())
    if saved.shape[0] != world_size:  # another world size: the rows cannot be mapped, log from scratch
        return []
    row = saved[rank]
    return list(row[~torch.isnan(row)].unbind())


def restore(run: RunContext, hooks: RunHooks, state: dict[str, Any]) -> tuple[list[torch.Tensor], int]:
    """Load a state produced by :func:`capture` into ``run``: this rank's pending losses and
    the metrics log's offset at capture."""
    counters = checked_counters(state)
    getattr(run.model, "module", run.model).load_state_dict(state["model"])
    for optimizer, saved in zip(run.optimizers, state["optimizers"], strict=False):
        optimizer.load_state_dict(saved)
    for scheduler, saved in zip(run.schedulers, state["schedulers"], strict=False):
        scheduler.load_state_dict(saved)
    if run.scaler is not None and state.get("scaler") is not None:
        run.scaler.load_state_dict(state["scaler"])
    run.epoch = counters["epoch"]
    run.global_step = counters["global_step"]
    run.batch_in_epoch = counters["batch_in_epoch"]
    run.samples_seen = counters["samples_seen"]
    run.epoch_done = counters["epoch_done"]
    run.last_val_step = counters["last_val_step"]
    run.last_metrics = {k: dict(v) for k, v in state.get("last_metrics", {}).items()}
    pending = [t.to(run.device) for t in pending_row(state, run.backend.rank, run.backend.world_size)]
    set_rng_state(state["rng"])
    plugin_states = state.get("plugins", {})
    if state.get("version", 1) < 2:  # one merged dict: every owner gets all of it, as before
        plugin_states = dict.fromkeys(hooks.owners("update_state"), plugin_states)
    hooks.update_state(run, plugin_states)
    return pending, counters["metrics_offset"]
