"""The one owner of SIGINT and SIGTERM in a training process.

While a run trains, the handlers only record the first signal; the loop asks
:meth:`SignalService.agreed` at the end of every optimizer step (and epoch), calls the
``on_interrupt`` hook (checkpointers save there), and stops: no final validation or test,
exit 130 (SIGINT) or 143 (SIGTERM). A second signal before that stop ends the process at
once (SIGINT: ``KeyboardInterrupt``; SIGTERM: ``SystemExit(143)``), through every
``finally`` of the run (the heartbeat records the end). Plugins install no handlers of
their own; launchers (torch's elastic agent, the Ray driver) forward signals to their
workers, where this service handles them.

With several processes the ranks must stop at the same step. A signal reaches ranks at
different moments, so each step starts a non-blocking all-reduce of this rank's flag and
reads the *previous* step's result: the collective overlaps a whole step of compute
instead of blocking one, and every rank sees the same sum at the same step (one step
after the earliest rank noticed the signal). Even overlapped, a collective per step is
not free when steps are short (a small model on CPU: measured about 0.5 ms on a 2-3 ms
gloo step); so after :data:`CALIBRATE_AT` step boundaries the ranks agree, in one
blocking all-reduce, to run it only every N-th boundary, N chosen so that it runs about
every :data:`MIN_INTERVAL_S` seconds at most (1 for steps longer than that). A signal
then stops the run within 2N steps, a few tenths of a second at most.

Schedulers preempt by signalling every process of a job, data-loader workers included,
and torch's workers die on a SIGTERM that does not come from their parent, which fails
the main process's next batch before it can save. While the service is installed,
processes forked from this one start with SIGTERM and SIGINT blocked, so only the
training process reacts and shuts its workers down normally (``fork`` start method, the
Linux default; ``spawn``/``forkserver`` workers keep torch's behaviour). Since such a
child cannot be terminated by a signal any more, on Linux it is also tied to this
process's life (``PR_SET_PDEATHSIG``): it never outlives the training process.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from runner._contract.backend import Backend

SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: With several processes the agreement runs at most about this often (see the module doc).
MIN_INTERVAL_S = 0.1
#: Step boundaries timed before the ranks choose how often to agree.
CALIBRATE_AT = 16
#: The agreement runs at least every this many step boundaries.
MAX_EVERY = 256

_shield_children = False
_at_fork_registered = False


def _block_in_child() -> None:
    if _shield_children:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        _die_with_parent()


def _die_with_parent() -> None:
    """SIGKILL this (forked) process when its parent exits (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl: nobody will signal us
        os._exit(1)


def _set_shield(active: bool) -> None:
    global _shield_children, _at_fork_registered
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_block_in_child)
        _at_fork_registered = True
    _shield_children = active


def exit_code(signal_name: str) -> int:
    """The shell's exit status for a process stopped by ``signal_name`` (128 + number)."""
    return 128 + int(getattr(signal, signal_name, signal.SIGINT))


class _Agreement:
    """The ranks' common answer to "did any rank receive a signal?", one step late (or one
    agreement late: every :attr:`every`-th call, the same calls on every rank)."""

    def __init__(self, backend: Backend, device: Any) -> None:
        self.backend = backend
        self.device = device
        self.every = 1
        self.calls = 0
        self._first_call = 0.0
        self._work: Any = None
        self._flag: torch.Tensor | None = None
        import torch.distributed as dist

        self._async = dist.is_available() and dist.is_initialized() and backend.world_size > 1

    def _calibrate(self) -> None:
        """Choose :attr:`every` from the time between calls: the slowest rank's wish wins
        (one blocking all-reduce, at the same call on every rank)."""
        import torch
        import torch.distributed as dist

        interval = (time.perf_counter() - self._first_call) / max(1, self.calls - 1)
        wish = min(MAX_EVERY, max(1, math.ceil(MIN_INTERVAL_S / max(interval, 1e-9))))
        agreed = torch.tensor([wish], dtype=torch.float64, device=self.device)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        self.every = int(agreed.item())

    def __call__(self, local: bool) -> bool:
        import torch

        if self.backend.world_size == 1:
            return local
        if not self._async:  # a backend without torch.distributed: one blocking reduce per step
            flag = torch.tensor([float(local)], dtype=torch.float64, device=self.device)
            return bool(self.backend.all_reduce_sum(flag).item() > 0)
        import torch.distributed as dist

        self.calls += 1
        if self.calls == 1:
            self._first_call = time.perf_counter()
        elif self.calls == CALIBRATE_AT:
            self._calibrate()
        if self.calls % self.every:
            return False
        agreed = False
        if self._work is not None:
            self._work.wait()
            assert self._flag is not None
            agreed = bool(self._flag.item() > 0)
        self._flag = torch.tensor([float(local)], dtype=torch.float64, device=self.device)
        self._work = dist.all_reduce(self._flag, async_op=True)
        return agreed

    def close(self) -> None:
        """Wait for the last reduce (every rank started it, so every rank waits for it)."""
        if self._work is not None:
            work, self._work = self._work, None
            work.wait()


class SignalService:
    """Installed around training in the main thread of every training process."""

    def __init__(self, backend: Backend, device: Any, announce: bool = True, resume_hint: str = "") -> None:
        self.received: int | None = None
        self.announce = announce
        #: The command that continues the run, printed with the first signal ("" for none).
        self.resume_hint = resume_hint
        self._agreement = _Agreement(backend, device)
        self._previous: dict[int, Any] = {}
        self._owner = os.getpid()
        self._stopping = False

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    def __enter__(self) -> SignalService:
        if threading.current_thread() is threading.main_thread():
            self._owner = os.getpid()
            for signum in SIGNALS:
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)
            _set_shield(True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.restore()
        if kind is None:
            self._agreement.close()

    def restore(self) -> None:
        """Put back the handlers that were there before."""
        if not self._previous or threading.current_thread() is not threading.main_thread():
            return
        _set_shield(False)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def agreed(self) -> str:
        """At a step boundary: the signal every rank now stops for, or ``""``.

        Collective with several processes: every rank calls it at the same boundaries.
        """
        if self._stopping:
            return self.signal_name or "SIGTERM"
        if self._agreement(self.received is not None):
            self._stopping = True
            return self.signal_name or "SIGTERM"  # another rank's signal
        return ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._owner:
            return  # a forked child that still has our handler: the main process decides
        if self.received is None:
            self.received = signum
            if self.announce:
                name = signal.Signals(signum).name
                again = "Ctrl-C" if signum == signal.SIGINT else name
                hint = f"; continue later with: {self.resume_hint}" if self.resume_hint else ""
                print(
                    f"\nreceived {name}: finishing the current step, then stopping ({again} again stops at once){hint}",
                    file=sys.stderr,
                    flush=True,
                )
            return
        self.restore()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(exit_code(signal.Signals(signum).name))
