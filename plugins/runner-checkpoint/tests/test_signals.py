"""The signal catcher: record, escalate on a second signal, restore, shield forked children."""

from __future__ import annotations

import json
import os
import signal
import warnings
from pathlib import Path

import pytest
from ckpt_helpers import Cli, cli_fixture, isolate_process_state, write_recipe  # noqa: F401 (fixtures)

from runner_checkpoint.signals import SignalCatcher


def test_first_signal_is_recorded_second_falls_through_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    catcher = SignalCatcher()
    assert catcher.install()
    signal.raise_signal(signal.SIGINT)
    assert catcher.received == signal.SIGINT
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)  # the previous handler: default_int_handler
    assert signal.getsignal(signal.SIGINT) is before and not catcher.installed


def fork() -> int:
    with warnings.catch_warnings():  # Python 3.12+ warns about fork() in threaded processes
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def test_forked_children_start_with_the_signals_blocked() -> None:
    catcher = SignalCatcher()
    catcher.install()
    try:
        pid = fork()
        if pid == 0:  # the child, like a data-loader worker
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
            os._exit(0 if {signal.SIGTERM, signal.SIGINT} <= blocked else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        catcher.restore()
    pid = fork()
    if pid == 0:  # once restored, children are left alone
        os._exit(0 if signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, []) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_every_minutes_saves_on_time(cli: Cli, tmp_path: Path) -> None:
    recipe = write_recipe(
        tmp_path / "r.toml",
        **{
            "run.epochs": 1,
            "checkpoint": {"name": "default", "every_minutes": 1e-6, "every_epoch": False, "keep_last": 100},
        },
    )
    result = cli("run", recipe, "--run-dir", tmp_path / "run", "--no-progress")
    assert result.code == 0, result.err
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "run" / "checkpoints").glob("step-*/manifest.json")]
    reasons = sorted(m["reason"] for m in manifests)
    assert reasons.count("time") >= 10 and reasons.count("end") == 1
