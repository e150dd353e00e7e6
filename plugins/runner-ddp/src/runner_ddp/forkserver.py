"""Keep the fork server alive through a SIGTERM meant for the training processes.

With the ``forkserver`` start method (CPU training on Linux) the workers are forked by a
server process, and torch's agent learns that a worker ended through a pipe the server
holds: if the server dies, every worker looks dead to the agent, which then stops them
all at once. A SIGTERM sent to the whole process group (``kill -- -PGID``, a scheduler)
would kill the server (multiprocessing protects it from SIGINT only) and turn a clean
stop (finish the step, save, exit 143) into an abort.

The launcher lists this module in the fork server's preload list, and the server imports
it first thing: it then ignores SIGTERM. Workers forked from it inherit that until
:func:`runner_ddp.backend.worker_main` installs their own handler, a moment later (a
SIGTERM in that moment is lost, and forwarded again by the launcher, which waits for the
workers to count it). Imported anywhere else, the module does nothing: it acts only in a
child of the process named by :data:`LAUNCHER_ENV`.
"""

from __future__ import annotations

import os
import signal

#: Set by the launcher (its pid) while it starts workers.
LAUNCHER_ENV = "RUNNER_DDP_LAUNCHER_PID"


def protect() -> bool:
    """Ignore SIGTERM if this process is the launcher's fork server."""
    if os.environ.get(LAUNCHER_ENV) != str(os.getppid()):
        return False
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return True


protect()
