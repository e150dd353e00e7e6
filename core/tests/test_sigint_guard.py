"""SigintWatch: which KeyboardInterrupt is the user's (the load failure itself is tested,
under every SIGINT setup, in test_plugin_loading.py)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from runner._plugins.guards import SigintWatch


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


def test_a_handler_someone_else_installed_still_counts_as_the_users() -> None:
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        with SigintWatch() as watch:
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
    assert watch.from_user
