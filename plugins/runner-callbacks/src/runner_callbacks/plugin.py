"""Entry module of the ``runner-callbacks`` plugin (torch-free): registers the callbacks lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl

CALLBACKS = {
    "early_stopping": "EarlyStopping",
    "ema": "EMA",
    "lr_monitor": "LRMonitor",
    "model_summary": "ModelSummary",
    "grad_norm": "GradNorm",
    "throughput": "Throughput",
    "time_limit": "TimeLimit",
}


@hookimpl
def register_callbacks(register: RegisterComponent) -> None:
    """Register ``early_stopping``, ``ema``, ``lr_monitor``, ``model_summary``, ``grad_norm``,
    ``throughput`` and ``time_limit``."""
    for name, declaration in CALLBACKS.items():
        register(name, f"runner_callbacks.components:{declaration}")
