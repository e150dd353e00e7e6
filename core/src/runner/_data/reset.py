"""tensorpack's ``reset_state()`` contract: a dataset's ``reset_state()`` runs once in
every process that iterates it, before its first sample.

So a loader calls :func:`reset_state_once` in each worker process (from its
``worker_init_fn``) and, with ``num_workers = 0`` or on the in-memory fast path, once in
the main process at its first pass. The call reaches through runner's own wrappers (the
transformed, folded and iterable-pipeline datasets) and torch's ``Subset``,
``ConcatDataset`` and ``ChainDataset`` to the datasets that define the method: a user's
wrapper that defines ``reset_state`` is called instead of what it wraps, and forwards to
it as tensorpack dataflows do.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

#: Set on each dataset to the pid of the process that last reset it: forked workers
#: inherit the parent's value, so each process resets its copy exactly once.
_MARK = "_runner_reset_pid"


def _inner(dataset: Any) -> list[Any]:
    """The datasets inside one of the known wrappers (``[]`` for anything else)."""
    wrapped = getattr(dataset, "runner_wraps", None)  # runner's own wrappers declare it
    if wrapped is not None:
        return [wrapped] if not isinstance(wrapped, (list, tuple)) else list(wrapped)
    data = torch.utils.data
    if isinstance(dataset, data.Subset):
        return [dataset.dataset]
    if isinstance(dataset, (data.ConcatDataset, data.ChainDataset)):
        return list(dataset.datasets)
    return []


def owners(dataset: Any) -> Iterator[Any]:
    """The outermost datasets in ``dataset`` that define ``reset_state``."""
    if dataset is None:
        return
    if callable(getattr(dataset, "reset_state", None)):
        yield dataset
        return
    for inner in _inner(dataset):
        yield from owners(inner)


def reset_state_once(dataset: Any) -> None:
    """Call ``reset_state()`` on the datasets :func:`owners` finds, at most once per
    process each."""
    pid = os.getpid()
    for owner in owners(dataset):
        if getattr(owner, _MARK, None) == pid:
            continue
        with contextlib.suppress(AttributeError):  # __slots__ or read-only: call it, unmarked
            setattr(owner, _MARK, pid)
        owner.reset_state()
