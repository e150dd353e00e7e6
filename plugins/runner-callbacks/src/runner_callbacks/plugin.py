"""Entry module of the ``runner-callbacks`` plugin (torch-free): registers the callbacks lazily."""

from __future__ import annotations

from runner import RegisterComponent, hookimpl

CALLBACKS = {
    "early_stopping": (
        "early_stopping:EarlyStopping",
        "EarlyStoppingParams",
        "Stop when a validation metric stops improving.",
    ),
    "ema": ("ema:EMA", "EMAParams", "Exponential moving average of the weights, used for validation and test."),
    "lr_monitor": (
        "lr_monitor:LRMonitor",
        "LRMonitorParams",
        "Learning rate of every parameter group in the train records.",
    ),
    "model_summary": (
        "model_summary:ModelSummary",
        "ModelSummaryParams",
        "Parameters per module, trainable and frozen.",
    ),
    "grad_norm": ("grad_norm:GradNorm", "GradNormParams", "Global (and per-layer) gradient norm in the train records."),
    "throughput": ("throughput:Throughput", "ThroughputParams", "Samples/s, step time and data-wait fraction."),
    "time_limit": ("time_limit:TimeLimit", "TimeLimitParams", "Stop cleanly after a wall-clock budget."),
}


@hookimpl
def register_callbacks(register: RegisterComponent) -> None:
    """Register ``early_stopping``, ``ema``, ``lr_monitor``, ``model_summary``, ``grad_norm``,
    ``throughput`` and ``time_limit``."""
    for name, (factory, params, doc) in CALLBACKS.items():
        register(name, f"runner_callbacks.{factory}", params=f"runner_callbacks.params:{params}", doc=doc)
