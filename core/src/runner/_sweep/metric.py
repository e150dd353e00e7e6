"""Which validation metric a sweep optimizes, and reading it from a run's records."""

from __future__ import annotations

from typing import Any

from runner._engine.records import lower_is_better


def split_metric(metric: str) -> tuple[str, str]:
    """``accuracy`` / ``main/accuracy`` / ``val/main/accuracy`` → ``(loader key or "", name)``."""
    parts = metric.split("/")
    if parts[0] == "val" and len(parts) > 1:
        parts = parts[1:]
    if len(parts) == 1:
        return "", parts[0]
    return "/".join(parts[:-1]), parts[-1]


def maximize(metric: str, mode: str) -> bool:
    """Whether larger is better: ``mode`` max/min, or for ``auto`` by the metric's name."""
    if mode in ("max", "min"):
        return mode == "max"
    return not lower_is_better(split_metric(metric)[1])


def default_metric(record: dict[str, Any]) -> str | None:
    """A validation record's metric to optimize when ``[sweep] metric`` is unset: accuracy
    (or any higher-is-better metric) before loss."""
    names = [k for k, v in record.items() if k not in ("stage", "key", "epoch", "step") and _number(v)]
    better = [n for n in names if not lower_is_better(n)]
    chosen = (better or names)[:1]
    return f"{record.get('key', 'main')}/{chosen[0]}" if chosen else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_of(record: dict[str, Any], metric: str) -> float | None:
    """The metric's value in a validation record, or None when the record has none."""
    if record.get("stage") != "val":
        return None
    key, name = split_metric(metric)
    if key and record.get("key", "main") != key:
        return None
    value: Any = record.get(name)
    return float(value) if _number(value) else None
