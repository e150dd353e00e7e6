"""A KeyboardInterrupt raised by plugin import code is the plugin's, whatever SIGINT's handler is."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner._plugins.guards import SigintWatch
from runner._plugins.manager import PluginManager


@pytest.fixture
def sigint_ignored() -> Iterator[None]:
    """SIGINT as a shell leaves it for a background job (``cmd &``, nohup): ignored."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_with_sigint_ignored_no_keyboard_interrupt_is_the_users(sigint_ignored: None) -> None:
    with SigintWatch() as watch:
        pass
    assert not watch.from_user


def test_with_sigint_ignored_a_raised_keyboard_interrupt_is_a_load_failure(
    sigint_ignored: None, fake_dists: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists("runner-interrupts", "raise KeyboardInterrupt\n")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-interrupts")
    manager = PluginManager().load()
    assert [str(f) for f in manager.failures] == [
        "plugin runner-interrupts 1.0 failed to load: KeyboardInterrupt: it raised KeyboardInterrupt while "
        "loading (no Ctrl-C was pressed)"
    ]


def test_a_handler_someone_else_installed_still_counts_as_the_users() -> None:
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        with SigintWatch() as watch:
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
    assert watch.from_user
