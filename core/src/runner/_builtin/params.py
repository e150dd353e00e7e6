"""Parameter schemas of the built-in components (torch-free)."""

from __future__ import annotations

import attrs

from runner._contract.params import at_least, param


@attrs.define
class SingleDeviceParams:
    """The single-device backend takes no parameters."""


@attrs.define
class SamplerParams:
    """Built-in samplers shard across ranks when the backend runs several processes."""

    drop_last: bool = param(False, doc="When sharding, drop the tail instead of padding it.")


def _stages(value: list[str]) -> str | None:
    unknown = [s for s in value if s not in ("train", "val", "test")]
    return f"unknown stages {unknown}: use train, val, test" if unknown else None


@attrs.define
class JsonlLoggerParams:
    """Writes records to another JSON-lines file (``metrics.jsonl`` stays the run's canonical record)."""

    path: str = param("log.jsonl", doc="File name, relative to the run directory (or absolute).")
    stages: list[str] = param([], doc="Stages to write (train, val, test); empty: all.", check=_stages)
    timestamps: bool = param(True, doc="Add wall-clock 'time' (Unix seconds) and 'elapsed' to each record.")
    flush_secs: float = param(5.0, doc="Flush to disk at most this often (and when the run ends).", check=at_least(0))


@attrs.define
class CsvLoggerParams:
    """Writes records as CSV rows: header from the first record, widened when new columns appear."""

    path: str = param("metrics.csv", doc="File name, relative to the run directory (or absolute).")
    stages: list[str] = param([], doc="Stages to write (train, val, test); empty: all.", check=_stages)
    columns: list[str] = param([], doc="Fixed columns (others are dropped); empty: every key, in order seen.")
    flush_secs: float = param(5.0, doc="Flush to disk at most this often (and when the run ends).", check=at_least(0))
