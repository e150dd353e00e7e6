"""Import each plugin's entry module in a fresh interpreter: how long it takes, and which
heavy libraries it pulls in.

A fresh interpreter per plugin, because in one process the first plugin to import torch
hides every later one that does too. ``runner`` itself is imported first, so the core's
own imports are not counted against the plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import attrs

from runner._contract.registration import PluginInfo
from runner._plugins.discovery import EntryPoint

#: Libraries an entry module should not import: each costs every command tenths of a second
#: or more (torch about 1.5 s), ``runner --help`` and ``runner recipe check`` included.
HEAVY_MODULES: tuple[str, ...] = (
    "torch",
    "tensorflow",
    "jax",
    "numpy",
    "pandas",
    "scipy",
    "sklearn",
    "matplotlib",
    "ray",
    "transformers",
    "cv2",
    "PIL",
)
#: An entry module taking longer than this (seconds) to import is a problem.
SLOW_IMPORT_S = 1.0
#: How long one probe may take before it is reported as hanging.
PROBE_TIMEOUT_S = 120.0

_MARK = "@runner-probe "
_PROBE = """
import importlib, json, sys, time
import runner, runner.hookspecs
before = set(sys.modules)
started = time.perf_counter()
error = None
try:
    module_name, _, attr = sys.argv[1].partition(":")
    target = importlib.import_module(module_name.strip())
    for part in filter(None, attr.strip().split(".")):
        target = getattr(target, part)
except BaseException as exc:
    error = type(exc).__name__
seconds = time.perf_counter() - started
loaded = sorted({name.partition(".")[0] for name in set(sys.modules) - before})
sys.stdout.write("\\n@runner-probe " + json.dumps({"seconds": seconds, "loaded": loaded, "error": error}) + "\\n")
sys.stdout.flush()
"""


@attrs.frozen
class ImportProbe:
    """What importing one plugin's entry module did in a fresh interpreter."""

    plugin: PluginInfo
    entry_point: str
    seconds: float
    heavy: tuple[str, ...] = ()
    error: str | None = None


def _probe(ep: EntryPoint, info: PluginInfo, env: dict[str, str]) -> ImportProbe:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, ep.value],
            capture_output=True,
            text=True,
            env=env,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
        # The entry module may print, even exit early: the report is the marked line, if any.
        lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
        report = json.loads(lines[-1][len(_MARK) :]) if lines else None
    except subprocess.TimeoutExpired:
        return ImportProbe(info, ep.value, PROBE_TIMEOUT_S, error="timeout")
    except ValueError:
        report = None
    if not isinstance(report, dict):
        return ImportProbe(info, ep.value, 0.0, error=f"exit status {done.returncode}")
    heavy = tuple(name for name in HEAVY_MODULES if name in report["loaded"])
    return ImportProbe(info, ep.value, float(report["seconds"]), heavy, report["error"])


def probe_imports(entry_points: list[tuple[EntryPoint, PluginInfo]]) -> list[ImportProbe]:
    """Probe every entry point, two at a time (each probe is mostly interpreter start-up)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda pair: _probe(pair[0], pair[1], env), entry_points))
