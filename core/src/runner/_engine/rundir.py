"""The files of a run directory, and the heartbeat that marks a run in progress (torch-free).

``runner run`` first claims the directory (:mod:`runner._engine.claim`): it writes
``.runner-run``, which marks the directory as runner's, and holds an exclusive lock on
it for the run's life, then saves the command (:mod:`runner._engine.command`):
``command.json`` and copies of the local plugin files in ``plugins/``. The engine then
writes, on the primary process:

- ``recipe.toml``: the resolved recipe, at start (listing the copied plugins);
- ``heartbeat.json``: ``{"pid", "host", "started"}`` at start, its modification time
  refreshed every :data:`HEARTBEAT_SECS` by a daemon thread, and ``"ended"`` (plus
  ``"error"`` when the run raised) added when the run stops;
- ``metrics.jsonl``: every record;
- ``model.safetensors``, ``model.<name>.safetensors`` and ``model.json``: the trained
  model, when training ends (:mod:`runner._engine.modelfiles`);
- ``summary.json``: when the run finished.

From these a run is *finished* (summary.json written after the heartbeat started),
*running* (heartbeat not ended, fresh, and on this host its process alive) or *crashed*
(anything else: it raised, was killed, or its machine went away). A run that fails
before training starts (no heartbeat yet) leaves no directory behind when ``runner run``
created it for that run.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
HEARTBEAT_FILE = "heartbeat.json"
SUMMARY_FILE = "summary.json"
RECIPE_FILE = "recipe.toml"
#: The commands started in a run directory, and the one that continues it (runner._engine.command).
COMMAND_FILE = "command.json"
#: Copies of the local plugin files a run loaded; the run directory's recipe.toml lists them.
PLUGINS_DIR = "plugins"
#: Marks a directory as a runner run directory; the run holding it is locked on this file.
MARKER_FILE = ".runner-run"
#: How often a live run touches its heartbeat; one older than 3x this is a dead run's.
HEARTBEAT_SECS = 20.0


def started_since(run_dir: Path, since: float) -> bool:
    """Whether a run in ``run_dir`` started training at or after time ``since`` (its heartbeat says so)."""
    try:
        beat = json.loads((Path(run_dir) / HEARTBEAT_FILE).read_text(encoding="utf-8"))
        return float(beat["started"]) >= since
    except (OSError, ValueError, KeyError, TypeError):
        return False


class Heartbeat:
    """Marks a run directory as in progress; :meth:`stop` records how the run ended."""

    def __init__(self, run_dir: Path, interval: float = HEARTBEAT_SECS) -> None:
        self.path = Path(run_dir) / HEARTBEAT_FILE
        self.interval = interval
        self.info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        self._write()
        self._thread = threading.Thread(target=self._beat, name="runner-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self, error: BaseException | None = None, interrupted: str = "") -> None:
        """Record the end: ``error`` when the run raised, ``interrupted`` (a signal name)
        when a signal stopped it, gracefully or not."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(5)
        self.info["ended"] = time.time()
        if isinstance(error, KeyboardInterrupt):
            interrupted = interrupted or "SIGINT"
        elif isinstance(error, SystemExit) and error.code == 143:
            interrupted = interrupted or "SIGTERM"
        elif error is not None:
            self.info["error"] = f"{type(error).__name__}: {error}"
        if interrupted:
            self.info["interrupted"] = interrupted
        with contextlib.suppress(OSError):
            self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(f".{HEARTBEAT_FILE}.tmp")
        tmp.write_text(json.dumps(self.info) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            with contextlib.suppress(OSError):
                os.utime(self.path)
