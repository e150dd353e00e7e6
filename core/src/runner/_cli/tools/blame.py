"""Attribute an unexpected exception to the plugin whose code raised it."""

from __future__ import annotations

import traceback
from types import TracebackType

from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager


def _package(module_name: str) -> str:
    return module_name.partition(".")[0]


def plugin_packages(plugins: PluginManager) -> dict[str, PluginInfo]:
    """Top-level package name → the plugin that owns it (core's own package excluded)."""
    owners: dict[str, PluginInfo] = {}
    for component in plugins.registry:
        ref = component.factory_ref
        module = ref.partition(":")[0] if isinstance(ref, str) else getattr(ref, "__module__", "")
        if module:
            owners.setdefault(_package(module), component.plugin)
    for info, module in plugins.plugin_modules():
        owners.setdefault(_package(module), info)
    owners.pop("runner", None)
    return owners


def blame(exc: BaseException, plugins: PluginManager) -> str | None:
    """``plugin runner-x 1.0: ValueError: ... (at file.py:12)`` for the deepest frame in
    plugin code, or None when no plugin code is on the traceback."""
    owners = plugin_packages(plugins)
    culprit: tuple[PluginInfo, traceback.FrameSummary] | None = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        owner = owners.get(_package(str(tb.tb_frame.f_globals.get("__name__", ""))))
        if owner is not None:
            summary = traceback.extract_tb(tb, limit=1)[0]
            culprit = (owner, summary)
        tb = tb.tb_next
    if culprit is None:
        return None
    info, frame = culprit
    return f"plugin {info}: {type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
