"""Parameter schemas of the built-in components (torch-free)."""

from __future__ import annotations

import attrs

from runner.schema.fields import param


@attrs.define
class SingleDeviceParams:
    """The single-device backend takes no parameters."""


@attrs.define
class SamplerParams:
    """Built-in samplers shard across ranks when the backend runs several processes."""

    drop_last: bool = param(False, doc="When sharding, drop the tail instead of padding it.")
