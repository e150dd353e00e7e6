"""Fixtures of the runner-checkpoint tests; helpers live in ckpt_helpers.py (test modules
import them from there, so this package's tests never pick up another directory's conftest)."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from ckpt_helpers import ENV, Cli

from runner_checkpoint import faults


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    return Cli(capsys)


@pytest.fixture(autouse=True)
def _isolate_process_state() -> Iterator[None]:
    """In-process runs change global state: deterministic mode, RNGs, signal handlers."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    faults.hook = None
    torch.use_deterministic_algorithms(deterministic)
    random.setstate(rng[0])
    np.random.set_state(rng[1])
    torch.set_rng_state(rng[2])
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
