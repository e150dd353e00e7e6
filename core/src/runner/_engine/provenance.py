"""Where a trained model came from: plugins (with hashes of local plugin files) and versions.

``model.json`` records it so that a run's model can be rebuilt later, with the same
plugins, and so that a change since (an upgraded plugin, an edited local plugin file) is
said out loud instead of producing a silently different model.
"""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner._engine.modelfiles import sha256_of
from runner._version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable

    from runner._contract.registration import PluginInfo


#: The version of a plugin object handed over in Python (``runner.fit(..., plugins=[obj])``).
OBJECT_VERSION = "object"


def local_spec(info: PluginInfo) -> str | None:
    """How to load a local (``-p`` or recipe ``plugins``) plugin again: its file's absolute
    path or its module name; None for an installed plugin."""
    if info.version != "local":
        return None
    if info.dist.endswith(".py"):
        return str(Path(info.dist).resolve())
    return info.dist


def plugin_rows(plugins: Iterable[PluginInfo]) -> list[dict[str, Any]]:
    """One row per plugin distribution: name, distribution, version; local plugin files
    also their absolute ``path`` and ``sha256``."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for info in plugins:
        if (info.dist, info.version) in seen:
            continue
        seen.add((info.dist, info.version))
        row: dict[str, Any] = {"name": info.name, "distribution": info.dist, "version": info.version}
        spec = local_spec(info)
        if spec is not None and spec.endswith(".py"):
            row["path"] = spec
            with contextlib.suppress(OSError):
                row["sha256"] = sha256_of(Path(spec))
        rows.append(row)
    return rows


def versions() -> dict[str, str]:
    """runner-core, torch, numpy, safetensors and Python versions."""
    import numpy
    import safetensors
    import torch

    return {
        "runner-core": __version__,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "safetensors": str(getattr(safetensors, "__version__", "?")),
        "python": platform.python_version(),
    }


def plugin_changes(saved: list[dict[str, Any]], current: list[dict[str, Any]]) -> list[str]:
    """Plugins removed, upgraded or (local files) edited since ``saved`` was recorded."""
    now = {str(row.get("distribution")): row for row in current}
    lines = []
    for row in saved:
        if not isinstance(row, dict):
            continue
        dist = str(row.get("distribution"))
        if row.get("version") == OBJECT_VERSION:
            if dist not in now:
                lines.append(f"the model was trained with the plugin object {dist}: pass it again with plugins=[...]")
            continue
        if row.get("version") == "local" and row.get("path"):
            path = Path(str(row["path"]))
            try:
                digest = sha256_of(path)
            except OSError:
                continue  # loading it reports the missing file
            if row.get("sha256") and digest != row["sha256"]:
                lines.append(f"local plugin {path} changed since the model was trained")
            continue
        match = now.get(dist)
        if match is None:
            lines.append(f"plugin {dist} {row.get('version')} was used to train the model and is not installed")
        elif match.get("version") != row.get("version"):
            lines.append(f"plugin {dist}: trained with {row.get('version')}, now {match.get('version')}")
    return lines
