"""Entry module of the ``runner-samplers`` plugin (torch-free: components are lazy references).

``random`` and ``sequential`` are the core's built-ins; this plugin adds ``distributed``,
``weighted`` and ``bucket_by_length``, all resumable mid-epoch.
"""

from __future__ import annotations

from runner import RegisterComponent, hookimpl


@hookimpl
def register_samplers(register: RegisterComponent) -> None:
    """Register ``distributed``, ``weighted`` and ``bucket_by_length``."""
    register("distributed", "runner_samplers.components:Distributed")
    register("weighted", "runner_samplers.components:Weighted")
    register("bucket_by_length", "runner_samplers.components:BucketByLength")
