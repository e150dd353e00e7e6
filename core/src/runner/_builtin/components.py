"""The built-in components, each declared once (torch-free: ``build`` imports what it makes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner._contract.declaration import component
from runner._contract.params import at_least, param

if TYPE_CHECKING:
    from pathlib import Path

    from runner._builtin.loggers import CsvLogger, JsonlLogger
    from runner._builtin.single import SingleDevice
    from runner._processing.executors import InlineExecutor, ProcessExecutor, ThreadExecutor

# -- backend ---------------------------------------------------------------------------------


@component
class Single:
    """One process on one device (CPU or one GPU)."""

    def build(self) -> SingleDevice:
        from runner._builtin.single import SingleDevice

        return SingleDevice()


# -- loggers ---------------------------------------------------------------------------------


def _stages(value: list[str]) -> str | None:
    unknown = [s for s in value if s not in ("train", "val", "test")]
    return f"unknown stages {unknown}: use train, val, test" if unknown else None


@component
class Jsonl:
    """Another JSON-lines file of records, optionally timestamped (metrics.jsonl is always written)."""

    path: str = param("log.jsonl", doc="File name, relative to the run directory (or absolute).")
    stages: list[str] = param([], doc="Stages to write (train, val, test); empty: all.", check=_stages)
    timestamps: bool = param(True, doc="Add wall-clock 'time' (Unix seconds) and 'elapsed' to each record.")
    flush_secs: float = param(5.0, doc="Flush to disk at most this often (and when the run ends).", check=at_least(0))

    def build(self, run_dir: Path) -> JsonlLogger:
        from runner._builtin.loggers import JsonlLogger

        return JsonlLogger(
            run_dir, path=self.path, stages=self.stages, timestamps=self.timestamps, flush_secs=self.flush_secs
        )


@component
class Csv:
    """Records as CSV rows; the header widens when new columns appear."""

    path: str = param("metrics.csv", doc="File name, relative to the run directory (or absolute).")
    stages: list[str] = param([], doc="Stages to write (train, val, test); empty: all.", check=_stages)
    columns: list[str] = param([], doc="Fixed columns (others are dropped); empty: every key, in order seen.")
    flush_secs: float = param(5.0, doc="Flush to disk at most this often (and when the run ends).", check=at_least(0))

    def build(self, run_dir: Path) -> CsvLogger:
        from runner._builtin.loggers import CsvLogger

        return CsvLogger(run_dir, path=self.path, stages=self.stages, columns=self.columns, flush_secs=self.flush_secs)


# -- executors -------------------------------------------------------------------------------


@component
class Process:
    """process_count worker processes, each with a share of the shards (fork where available)."""

    def build(self) -> ProcessExecutor:
        from runner._processing.executors import ProcessExecutor

        return ProcessExecutor()


@component
class Thread:
    """process_count threads."""

    def build(self) -> ThreadExecutor:
        from runner._processing.executors import ThreadExecutor

        return ThreadExecutor()


@component
class Inline:
    """One shard after the other, in-process."""

    def build(self) -> InlineExecutor:
        from runner._processing.executors import InlineExecutor

        return InlineExecutor()
