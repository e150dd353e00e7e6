"""Remove the launcher's temporary directories however the launcher ends.

``runner run`` keeps the workers' reports in a temporary directory, and multiprocessing
keeps the fork server's socket in another (``pymp-*``). A ``finally`` removes them when
the launcher exits, but a SIGKILL runs no ``finally``. The janitor is a tiny Python
process (no imports beyond the standard library) that holds the read end of a pipe
whose write end only the launcher (and, with the ``fork`` start method, the workers
forked from it) holds: when the last of them is gone, however it died, the janitor reads
end-of-file, removes the directories and exits (a launcher that ends normally says
``done`` first: it removed what it had to, and keeps what it still uses). It runs in a
session of its own, so a
Ctrl-C or a signal to the launcher's process group does not stop it before it has cleaned
up.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Retried for a moment: a worker may still be writing a marker into a directory while it
# is removed (the workers die within a fraction of a second of their launcher).
_CODE = """
import os, shutil, sys, time
if sys.stdin.buffer.read() == b"done":
    sys.exit()
for _ in range(50):
    left = [p for p in sys.argv[1:] if os.path.lexists(p)]
    if not left:
        break
    for p in left:
        shutil.rmtree(p, ignore_errors=True)
    time.sleep(0.1)
"""


class Janitor:
    """Removes ``paths`` once the launcher (this process) is gone; :meth:`close` when done."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = [str(p) for p in paths]
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _CODE, *self.paths],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def close(self, timeout: float = 10) -> None:
        """Dismiss the janitor (the launcher cleans up itself) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None:
            return
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.write(b"done")
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()

    def __enter__(self) -> Janitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
