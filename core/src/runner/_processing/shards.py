"""One unit of ``[[process]]`` work: a group of inputs and the cache key of its output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class Shard:
    """Shard ``index`` of a step: its input files (``()`` for a step without inputs) and
    the content-addressed ``key`` its output is cached under."""

    index: int
    inputs: tuple[str, ...]
    key: str


def process_shard(processor: Any, shard: Shard) -> Mapping[str, Any]:
    """Run ``processor`` on one shard: ``processor.process(list(shard.inputs))``."""
    data: Mapping[str, Any] = processor.process(list(shard.inputs))
    return data
