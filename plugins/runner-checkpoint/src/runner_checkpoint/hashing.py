"""sha256 computed in a background thread, so hashing overlaps writing, reading and fsync."""

from __future__ import annotations

import hashlib
import queue
import threading


class Hasher:
    """Feed chunks with :meth:`update` (they must stay unchanged until :meth:`result`);
    a thread hashes them meanwhile (hashlib releases the GIL on large buffers)."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._chunks: queue.SimpleQueue[memoryview | bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="runner-checkpoint-hash", daemon=True)
        self._thread.start()
        self._hex: str | None = None

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: memoryview | bytes) -> None:
        if self._hex is not None:
            raise RuntimeError("Hasher already finished")
        self._chunks.put(chunk)

    def result(self) -> str:
        """Wait for every chunk fed so far; the hex digest (idempotent)."""
        if self._hex is None:
            self._chunks.put(None)
            self._thread.join()
            self._hex = self._digest.hexdigest()
        return self._hex
