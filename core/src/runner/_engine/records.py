"""Where metrics records go: ``metrics.jsonl`` in the run directory, then every logger.

Records hold only values that are reproducible (no wall-clock times), so an interrupted
and resumed run writes a ``metrics.jsonl`` identical to an uninterrupted one. Readers of
records (``runner runs``, sweeps) agree on which way a metric improves through
:func:`lower_is_better`.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from runner._contract.registration import PluginInfo

#: Metrics where lower is better; everything else (accuracy, f1, ...) is better higher.
LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "perplexity", "ppl", "cer", "wer")


def lower_is_better(metric: str) -> bool:
    """Whether smaller values of ``metric`` (``name`` or ``key/name``) are better, by its name."""
    name = metric.rsplit("/", 1)[-1].lower()
    return any(name == word or name.endswith(("_" + word, word + "_")) for word in LOWER_IS_BETTER)


class MetricsFile:
    """Appends one JSON object per line; ``tell``/``truncate`` let resume cut the tail."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run

    def log(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(", ", ": ")) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def tell(self) -> int:
        self._file.flush()
        return self._file.tell()

    def truncate(self, offset: int) -> None:
        """Drop everything after ``offset`` (records the resumed run will write again)."""
        self._file.flush()
        self._file.truncate(offset)
        self._file.seek(offset)

    def close(self) -> None:
        self._file.close()


class Records:
    """Fans each record out to the metrics file and the recipe's loggers.

    A logger that raises is warned about once, naming its plugin, and then skipped:
    logging must never stop training.
    """

    def __init__(self, metrics: MetricsFile | None, loggers: list[tuple[Any, PluginInfo]]) -> None:
        self.metrics = metrics
        self.loggers = loggers
        self._failed: set[int] = set()

    def log(self, record: dict[str, Any]) -> None:
        if self.metrics is not None:
            self.metrics.log(record)
        for index, (logger, info) in enumerate(self.loggers):
            if index in self._failed:
                continue
            try:
                logger.log(record)
            except Exception as exc:
                self._failed.add(index)
                warnings.warn(
                    f"logger from plugin {info} failed and is disabled: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def flush(self) -> None:
        if self.metrics is not None:
            self.metrics.flush()

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        for index, (logger, info) in enumerate(self.loggers):
            close = getattr(logger, "close", None)
            if not callable(close):
                continue
            try:
                close()  # buffered loggers write their last records here
            except Exception as exc:
                if index not in self._failed:
                    self._failed.add(index)
                    warnings.warn(
                        f"logger from plugin {info} failed when closing: {type(exc).__name__}: {exc}",
                        RuntimeWarning,
                        stacklevel=2,
                    )
