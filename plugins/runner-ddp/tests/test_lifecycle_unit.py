"""In-process checks of how launcher and workers live and die together: blame through
a hook's cause chain, hung ranks, the lifeline, signal forwarding, the janitor and the
fork server's SIGTERM guard (small helper processes only, no training)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import PluginError, RunnerError
from runner_ddp import failures, forkserver, stopping
from runner_ddp.janitor import Janitor
from runner_ddp.lifeline import Launcher, Lifeline, process_state, start_time
from runner_ddp.watch import HangWatch

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _raised(exc: BaseException, wrap: type[BaseException] | None = None) -> BaseException:
    """``exc`` raised, or raised inside a handler that re-raises it as ``wrap`` (``from``)."""
    try:
        try:
            raise exc
        except BaseException as inner:
            if wrap is None:
                raise
            raise wrap(f"plugin runner-checkpoint 0.1.0: hook on_end_train_step raised {inner}") from inner
    except BaseException as caught:
        return caught


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(SLEEPER)
    yield process
    if process.poll() is None:
        process.kill()
    process.wait()


# -- blame ----------------------------------------------------------------------------


def test_a_hook_that_failed_in_a_collective_is_collateral() -> None:
    """A peer's death inside a checkpointer's all-reduce reaches the launcher wrapped in a
    PluginError naming the checkpointer; its cause chain shows it was the peer."""
    lost = _raised(RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer"), PluginError)
    assert isinstance(lost, PluginError) and failures.is_collateral(lost)
    timeout = _raised(RuntimeError("[gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 30000ms"), PluginError)
    assert failures.is_collateral(timeout)
    assert not failures.is_collateral(_raised(ValueError("bad batch"), PluginError))
    # A runner error of its own is the user's message, even if its words look alike.
    assert not failures.is_collateral(RunnerError("[backend] timeout_s: 5 s is too short"))


def test_a_wrapped_collateral_error_does_not_hide_the_dead_rank(tmp_path: Path) -> None:
    for rank in (0, 1):
        failures.Markers(tmp_path, rank, 0).mark("started")
    wrapped = _raised(RuntimeError("Connection closed by peer [127.0.0.1]:5555"), PluginError)
    failures.Markers(tmp_path, 0, 0).report(wrapped)
    cause = failures.root_cause(failures.read_attempt(tmp_path), {0: (1, 10)})
    assert cause.rank == 1 and "died without an exception" in str(cause) and "plugin" not in str(cause)


def test_a_rank_whose_heartbeat_stopped_is_named_as_hung(tmp_path: Path) -> None:
    for rank in (0, 1):
        markers = failures.Markers(tmp_path, rank, 0)
        markers.mark("started")
        markers.beat()
    stopped_at = time.time() - 30
    os.utime(tmp_path / "0" / "rank1.alive", (stopped_at, stopped_at))
    failures.Markers(tmp_path, 0, 0).report(_raised(RuntimeError("Timed out waiting 20000ms"), PluginError))
    cause = failures.root_cause(failures.read_attempt(tmp_path), {0: (1, 10)})
    assert cause.rank == 1 and str(cause).startswith("rank 1 (pid ")
    assert "stopped responding: no heartbeat for 30 s" in str(cause)


@pytest.mark.slow  # starts processes
def test_the_watch_kills_and_names_a_rank_that_stopped(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    os.kill(sleeper.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10  # the signal is delivered asynchronously (slow on a loaded machine)
    while Path(f"/proc/{sleeper.pid}/stat").read_text().rpartition(")")[2].split()[0] != "T":
        assert time.monotonic() < deadline, "the sleeper never stopped"
        time.sleep(0.01)
    root = tmp_path / "0"
    root.mkdir()
    (root / "rank1.started").write_text(str(sleeper.pid), encoding="utf-8")
    (root / "rank1.alive").write_text("", encoding="utf-8")
    os.utime(root / "rank1.alive", (time.time() - 5, time.time() - 5))
    watch = HangWatch(tmp_path, timeout_s=3)
    watch.check()
    assert sleeper.wait(10) == -signal.SIGKILL
    hung = watch.hung[1]
    assert hung.pid == sleeper.pid and hung.state == "stopped" and hung.silent_s >= 5
    assert "SIGSTOP" in hung.describe()


@pytest.mark.slow  # starts processes
def test_the_watch_leaves_a_rank_with_a_fresh_heartbeat(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    markers = failures.Markers(tmp_path, 0, 0)
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "rank0.started").write_text(str(sleeper.pid), encoding="utf-8")
    markers.beat()
    watch = HangWatch(tmp_path, timeout_s=3)
    watch.check()
    assert watch.hung == {} and sleeper.poll() is None


# -- the lifeline ------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_a_zombie_or_a_recycled_pid_is_no_launcher(sleeper: subprocess.Popen[bytes]) -> None:
    launcher = Launcher(sleeper.pid, start_time(sleeper.pid))
    assert launcher.alive()
    if launcher.started:  # Linux: a process with the pid but another start time is another one
        assert not Launcher(sleeper.pid, "0").alive()
    os.kill(sleeper.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process_state(sleeper.pid) not in ("zombie", "") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not launcher.alive()  # a zombie (not yet reaped) is dead


@pytest.mark.slow  # starts processes
def test_the_lifeline_fires_when_the_launcher_dies_and_beats_meanwhile(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    deaths: list[float] = []
    markers = failures.Markers(tmp_path, 0, 0)
    (tmp_path / "0").mkdir()
    lifeline = Lifeline(Launcher(sleeper.pid), markers, watch_s=0.05, on_death=lambda: deaths.append(time.monotonic()))
    lifeline.start()
    try:
        assert (tmp_path / "0" / "rank0.alive").exists() and deaths == []
        time.sleep(0.3)
        assert deaths == []
        killed = time.monotonic()
        sleeper.kill()
        sleeper.wait()
        while not deaths and time.monotonic() - killed < 5:
            time.sleep(0.02)
        assert deaths and deaths[0] - killed < 1
    finally:
        lifeline.stop()


# -- signals ----------------------------------------------------------------------------


def _worker(tmp_path: Path, rank: int, pid: int, signals: int = 0) -> None:
    markers = failures.Markers(tmp_path, rank, 0)
    (tmp_path / "0").mkdir(exist_ok=True)
    (tmp_path / "0" / f"rank{rank}.started").write_text(str(pid), encoding="utf-8")
    if signals:
        markers.signals(signals)


@pytest.mark.slow  # starts processes
def test_the_launcher_forwards_a_signal_only_to_workers_that_did_not_get_it(tmp_path: Path) -> None:
    catcher = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\ntime.sleep(60)"
    unsignalled = subprocess.Popen([sys.executable, "-c", catcher])
    signalled = subprocess.Popen([sys.executable, "-c", catcher])
    try:
        time.sleep(0.5)  # both installed their handler
        _worker(tmp_path, 0, unsignalled.pid)
        _worker(tmp_path, 1, signalled.pid, signals=1)  # it counted a SIGTERM of its own
        with stopping.StopForwarder(tmp_path, ack_wait_s=0.2) as stops:
            os.kill(os.getpid(), signal.SIGTERM)  # the launcher's first SIGTERM: forwarded, not raised
            assert unsignalled.wait(10) == 7
            time.sleep(0.5)
            assert signalled.poll() is None
            assert stops.signal == signal.SIGTERM
            from torch.distributed.elastic.multiprocessing.api import SignalException

            with pytest.raises(SignalException):  # the second ends the job the agent's way
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
    finally:
        for process in (unsignalled, signalled):
            process.kill()
            process.wait()
    assert signal.getsignal(signal.SIGTERM) != stops._handle  # put back


def test_without_running_workers_the_first_signal_stops_at_once(tmp_path: Path) -> None:
    from torch.distributed.elastic.multiprocessing.api import SignalException

    with pytest.raises(SignalException), stopping.StopForwarder(tmp_path):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


@pytest.mark.slow  # starts processes
def test_a_worker_counts_the_stop_signals_it_receives(tmp_path: Path) -> None:
    code = (
        "import os, signal, sys, time\n"
        "from runner_ddp import failures, stopping\n"
        f"markers = failures.Markers({str(tmp_path)!r}, 3, 0)\n"
        "signal.signal(signal.SIGTERM, lambda *a: None)\n"
        "stopping.SignalCounter(markers)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "time.sleep(1)\n"
    )
    (tmp_path / "0").mkdir()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert failures.read_attempt(tmp_path).signals == {3: 2}


def test_the_agent_is_left_sighup_and_sigquit() -> None:
    from torch.distributed.launcher.api import LaunchConfig

    assert stopping.agent_signals(LaunchConfig) in ({"signals_to_handle": "SIGHUP,SIGQUIT"}, {})


@pytest.mark.slow  # starts processes
def test_the_fork_server_ignores_sigterm_only_under_its_launcher() -> None:
    code = "import signal, runner_ddp.forkserver; print(signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)"
    env = {**os.environ, forkserver.LAUNCHER_ENV: str(os.getpid())}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout == "True\n"
    env[forkserver.LAUNCHER_ENV] = "1"
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout == "False\n"


# -- the janitor ------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_the_janitor_cleans_up_after_a_launcher_that_died(tmp_path: Path) -> None:
    doomed, kept = tmp_path / "reports", tmp_path / "kept"
    for path in (doomed, kept):
        (path / "0").mkdir(parents=True)
    janitor = Janitor([doomed])
    assert janitor.process is not None and janitor.process.stdin is not None
    janitor.process.stdin.close()  # what the launcher's death does to the pipe
    janitor.process.wait(30)
    assert not doomed.exists()
    dismissed = Janitor([kept])
    dismissed.close()  # a launcher that ended normally keeps what it still uses
    assert kept.exists()
