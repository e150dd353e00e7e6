"""Progress display: a live status on a terminal, plain lines otherwise.

On a terminal, :func:`announce` says what is happening before training starts (loading
torch, building the data and the model), so the first output comes within a second of
``runner run``; then :class:`Progress` shows epoch, steps, samples/s, ETA and the latest
train and validation metrics, redrawn by a timer (4 Hz) from the run's live counters, so
the training loop pays nothing for it and the display moves between log steps. Its last
state stays on screen. Elsewhere (a file, a pipe, CI) one plain line per record, as before.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

#: Where :func:`announce` writes; set by the CLI on a terminal (None: silent).
_status_stream: TextIO | None = None


def enable_status(stream: TextIO | None) -> None:
    """Let :func:`announce` write to ``stream`` (a terminal) until the progress display starts."""
    global _status_stream
    _status_stream = stream


def announce(message: str) -> None:
    """Show ``message`` as the current start-up phase (one line, overwritten by the next)."""
    stream = _status_stream
    if stream is not None:
        stream.write(f"\r\x1b[K{message}...")
        stream.flush()


def clear_status() -> None:
    """Erase the start-up line and stop announcing (the progress display takes over)."""
    global _status_stream
    stream, _status_stream = _status_stream, None
    if stream is not None:
        stream.write("\r\x1b[K")
        stream.flush()


_NOT_METRICS = ("stage", "epoch", "step", "key")


def _format(metrics: dict[str, Any]) -> str:
    parts = []
    for key, value in metrics.items():
        if key in _NOT_METRICS:
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return " ".join(parts)


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-:--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Shows training progress on the primary process. ``enabled=False`` shows nothing.

    ``run`` (the live :class:`runner.RunContext`) is read by the display's timer: steps,
    samples and epoch move on screen without the loop calling anything per step.
    """

    def __init__(
        self,
        total_steps: int,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        run: Any = None,
        refresh_per_second: float = 4.0,
    ) -> None:
        self.total = total_steps
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.run = run
        self.started = time.perf_counter()
        self.start_step = run.global_step if run is not None else 0
        self.start_samples = run.samples_seen if run is not None else 0
        self.step = self.start_step
        self.train: dict[str, Any] = {}
        self.evals: dict[str, dict[str, Any]] = {}
        self._live: Any = None
        if enabled and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            clear_status()
            self._live = Live(
                self,
                console=Console(file=self.stream),
                refresh_per_second=refresh_per_second,
                transient=False,
                # other output while the display runs (a callback's print, a checkpointer's
                # message, a warning) goes above it instead of through it
                redirect_stdout=True,
                redirect_stderr=True,
            )
            self._live.start()

    # -- what the display shows -------------------------------------------------------

    def _counters(self) -> tuple[int, int, int]:
        run = self.run
        if run is None:
            return self.step, 0, 0
        return run.global_step, run.samples_seen, run.epoch

    def status_line(self, now: float | None = None) -> str:
        """``epoch 3/10  120/200 steps  1,234 samples/s  ETA 0:00:05`` (without the bar)."""
        step, samples, epoch = self._counters()
        elapsed = max((time.perf_counter() if now is None else now) - self.started, 1e-9)
        done = step - self.start_step
        eta = (self.total - step) * elapsed / done if done > 0 else math.inf
        rate = (samples - self.start_samples) / elapsed
        run = self.run
        epochs = None
        if run is not None:
            epochs = run.recipe.run.epochs if run.recipe.run.max_steps is None else None
            if epochs is None and run.steps_per_epoch:
                epochs = -(-self.total // run.steps_per_epoch)
        epoch_text = f"epoch {epoch + 1}/{epochs}" if epochs else f"epoch {epoch + 1}"
        return f"{epoch_text}  {step}/{self.total} steps  {rate:,.0f} samples/s  ETA {_clock(max(eta, 0.0))}"

    def metric_lines(self) -> list[str]:
        """One line for the train metrics and one per validation/test loader, labelled."""
        lines = [f"train     {_format(self.train)}"] if self.train else []
        lines += [f"{group:<9} {_format(values)}" for group, values in self.evals.items()]
        return lines

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        step = self._counters()[0]
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True, min_width=5)
        head.add_column(width=24)
        head.add_column(no_wrap=True, overflow="ellipsis")
        head.add_row(
            Text("train", style="bold"),
            ProgressBar(total=max(self.total, 1), completed=step, finished_style="green"),
            Text(self.status_line(), no_wrap=True, overflow="ellipsis"),
        )
        lines = [Text(line, no_wrap=True, overflow="ellipsis") for line in self.metric_lines()]
        return Group(head, *lines)

    # -- updates ------------------------------------------------------------------------

    def update(self, step: int, record: dict[str, Any] | None = None) -> None:
        """Called with each record (train log steps, validation, test)."""
        if not self.enabled:
            return
        self.step = step
        if record is not None:
            stage = record.get("stage", "train")
            metrics = {k: v for k, v in record.items() if k not in _NOT_METRICS and v is not None}
            if stage == "train":
                self.train = metrics
            else:
                self.evals[f"{stage}/{record.get('key', 'main')}"] = metrics
        if self._live is not None:
            return  # the timer redraws
        if record is not None:
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
        """Stop the timer, leaving the last state on screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        clear_status()
