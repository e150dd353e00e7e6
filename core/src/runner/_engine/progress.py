"""Progress display: a rich bar with ETA and live metrics on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _format(metrics: dict[str, Any]) -> str:
    parts = []
    for key, value in metrics.items():
        if key in ("stage", "epoch", "step", "key"):
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " ".join(parts)


class Progress:
    """Shows training progress on the primary process. ``enabled=False`` shows nothing."""

    def __init__(self, total_steps: int, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total = total_steps
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        if enabled and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=Console(file=self.stream),
                transient=True,
            )
            self._task = self._bar.add_task("train", total=total_steps, metrics="")
            self._bar.start()

    def update(self, step: int, record: dict[str, Any] | None = None) -> None:
        """Called on logging steps (and validation): cheap enough to ignore elsewhere."""
        if not self.enabled:
            return
        if self._bar is not None:
            fields = {"metrics": _format(record)} if record else {}
            self._bar.update(self._task, completed=step, **fields)
        elif record is not None:
            elapsed = time.perf_counter() - self.started
            eta = elapsed / max(step, 1) * max(self.total - step, 0)
            stage = record.get("stage", "train")
            key = f"/{record['key']}" if "key" in record else ""
            print(
                f"[{stage}{key}] epoch {record.get('epoch')} step {step}/{self.total} {_format(record)} "
                f"(eta {eta:.0f}s)",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
