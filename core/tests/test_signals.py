"""The core's signal service: record, agree, escalate on a second signal, restore, shield forked children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from runner._engine.signals import SignalService, exit_code


def _service() -> SignalService:
    backend = SimpleNamespace(world_size=1, rank=0, is_primary=True)
    return SignalService(backend, "cpu", announce=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(("signum", "escalation"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)])
def test_first_signal_is_recorded_second_stops_at_once_and_handlers_come_back(
    signum: signal.Signals, escalation: type[BaseException]
) -> None:
    before = signal.getsignal(signum)
    with _service() as service:
        assert service.agreed() == ""
        signal.raise_signal(signum)
        assert service.received == signum
        assert service.agreed() == signum.name
        with pytest.raises(escalation) as raised:
            signal.raise_signal(signum)
        if escalation is SystemExit:
            assert raised.value.code == 143
    assert signal.getsignal(signum) is before


def test_exit_codes_follow_the_shell() -> None:
    assert exit_code("SIGINT") == 130
    assert exit_code("SIGTERM") == 143


def fork() -> int:
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() in threaded processes
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


@pytest.mark.slow  # starts processes
def test_forked_children_start_with_the_signals_blocked() -> None:
    with _service():
        pid = fork()
        if pid == 0:  # the child, like a data-loader worker
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            os._exit(0 if {signal.SIGTERM, signal.SIGINT} <= blocked else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    pid = fork()
    if pid == 0:  # once the run ends, children are left alone
        os._exit(0 if signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, []) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


CHILD_OUTLIVES = """
import os, sys, time
from types import SimpleNamespace
from runner._engine.signals import SignalService

backend = SimpleNamespace(world_size=1, rank=0, is_primary=True)
with SignalService(backend, "cpu", announce=False):
    pid = os.fork()
    if pid == 0:  # a shielded child, like a data-loader worker: SIGTERM cannot stop it
        time.sleep(60)
        os._exit(0)
    print(pid, flush=True)
os._exit(0)  # the training process dies without shutting its child down
"""


@pytest.mark.slow  # starts processes
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_shielded_child_never_outlives_the_training_process() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD_OUTLIVES], capture_output=True, text=True, timeout=60)
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the forked child outlived its parent")


_AGREE = """
import os, signal, sys, torch.distributed as dist
from types import SimpleNamespace
from runner._engine import signals

rank, path, spaced = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "spaced"
dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
if spaced:  # the slowest wish wins: every 5th boundary
    signals.MIN_INTERVAL_S, signals.MAX_EVERY = 1000.0, 5
else:
    signals.MIN_INTERVAL_S = 0.0
backend = SimpleNamespace(world_size=2, rank=rank, is_primary=rank == 0)
with signals.SignalService(backend, "cpu", announce=False) as service:
    for call in range(1, 100):
        if rank == 1 and call == 30:
            os.kill(os.getpid(), signal.SIGTERM)  # only rank 1 is signalled
        if service.agreed():
            print(call, service._agreement.every, flush=True)
            break
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize(("spacing", "stop", "every"), [("every-step", 31, 1), ("spaced", 35, 5)])
def test_ranks_stop_at_the_same_boundary_however_the_agreement_is_spaced(
    tmp_path: Path, spacing: str, stop: int, every: int
) -> None:
    """Two gloo ranks, a SIGTERM on rank 1 only at boundary 30: both stop at the same
    boundary, one agreement later (the next one when it runs every step, boundary 35 when
    the ranks agreed to run it every 5th)."""
    import subprocess
    import sys

    store = tmp_path / "store"
    command = [sys.executable, "-c", _AGREE]
    procs = [
        subprocess.Popen([*command, str(rank), str(store), spacing], stdout=subprocess.PIPE, text=True)
        for rank in (0, 1)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == [f"{stop} {every}\n", f"{stop} {every}\n"]
