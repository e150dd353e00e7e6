"""The callbacks, each declared once: recipe parameters, documentation and ``build``
(torch-free: ``runner recipe check`` reads these; ``build`` imports the implementation)."""

from __future__ import annotations

from typing import Any, Literal

import attrs

from runner import BuildContext, at_least, component, one_of_patterns, param

#: A validation metric as records name it: ``val/<loader key>/<metric>``.
VAL_METRIC = r"val/[^/]+/[^/]+"


def between_0_and_1(value: Any) -> str | None:
    """Constraint: ``0 < value < 1`` (an EMA decay)."""
    return None if 0 < value < 1 else f"must be above 0 and below 1, found {value}"


def positive(value: Any) -> str | None:
    """Constraint: ``value > 0``."""
    return None if value > 0 else f"must be above 0, found {value}"


@component
class EarlyStopping:
    """Stop training when a validation metric stops improving."""

    monitor: str = param(
        "val/main/loss",
        doc='Validation metric to watch, "val/<key>/<metric>" (e.g. "val/main/f1_macro").',
        check=one_of_patterns(VAL_METRIC),
    )
    mode: Literal["min", "max"] = param("min", doc='"min": lower is better (losses); "max": higher is (accuracy).')
    patience: int = param(3, doc="Validations without improvement before training stops.", check=at_least(1))
    min_delta: float = param(0.0, doc="Smallest change of the metric that counts as an improvement.", check=at_least(0))

    def build(self, ctx: BuildContext | None = None) -> Any:
        from runner_callbacks import early_stopping

        return early_stopping.EarlyStopping(**attrs.asdict(self, recurse=False), ctx=ctx)


@component
class EMA:
    """An exponential moving average of the model's weights, used for validation and test."""

    decay: float = param(0.999, doc="Weight of the average at each update (0 < decay < 1).", check=between_0_and_1)
    warmup: bool = param(True, doc="Ramp the decay up as min(decay, (1 + n) / (10 + n)) over the first updates n.")
    every_n_steps: int = param(1, doc="Update the average every N optimizer steps.", check=at_least(1))
    evaluate: bool = param(True, doc="Validate and test with the averaged weights (swapped in and back).")

    def build(self) -> Any:
        from runner_callbacks import ema

        return ema.EMA(**attrs.asdict(self, recurse=False))


@component
class LRMonitor:
    """The learning rate of every optimizer's parameter groups, in the train records."""

    momentum: bool = param(False, doc="Also record each group's momentum (or Adam's beta1).")

    def build(self) -> Any:
        from runner_callbacks import lr_monitor

        return lr_monitor.LRMonitor(**attrs.asdict(self, recurse=False))


@component
class ModelSummary:
    """Parameters per module and in all, trainable and frozen: printed and in summary.json."""

    depth: int = param(1, doc="Module nesting shown (1: the model's direct children).", check=at_least(1))
    print_table: bool = param(True, doc="Print the table to stderr when training starts (primary process).")

    def build(self) -> Any:
        from runner_callbacks import model_summary

        return model_summary.ModelSummary(**attrs.asdict(self, recurse=False))


@component
class GradNorm:
    """The gradient norm (global and optionally per layer) in the train records."""

    norm_type: float = param(
        2.0, doc="Order of the norm (2: Euclidean; inf accepted as 'inf').", check=positive, finite=False
    )
    per_layer: bool = param(False, doc="Also record one norm per module holding parameters (grad_norm.<module>).")

    def build(self) -> Any:
        from runner_callbacks import grad_norm

        return grad_norm.GradNorm(**attrs.asdict(self, recurse=False))


@component
class Throughput:
    """Samples per second, step time and the fraction of time spent waiting for data."""

    window: int | None = param(
        None,
        doc="Optimizer steps per measurement; default: the run's log_every (one per train record).",
        check=at_least(1),
    )

    def build(self) -> Any:
        from runner_callbacks import throughput

        return throughput.Throughput(**attrs.asdict(self, recurse=False))


@component
class TimeLimit:
    """Stop training cleanly after a wall-clock budget (the checkpointer saves where it stops)."""

    minutes: float = param(doc="Training time allowed, in minutes, counted from when the run starts.", check=positive)

    def build(self, ctx: BuildContext | None = None) -> Any:
        from runner_callbacks import time_limit

        return time_limit.TimeLimit(**attrs.asdict(self, recurse=False), ctx=ctx)
