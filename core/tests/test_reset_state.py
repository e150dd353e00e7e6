"""tensorpack's ``reset_state()``: called once in every loader worker and once in the main
process with 0 workers, for map-style and iterable sources, bare or wrapped by sample
transforms or folded into tensors (before, only a bare map-style dataset with workers got it).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from runner._data.build import make_loader


class Recorder:
    """Appends this process's pid to ``log`` on every ``reset_state()``."""

    log: Path

    def reset_state(self) -> None:
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")


class Rows(Recorder, torch.utils.data.Dataset[Any]):
    def __init__(self, log: Path, n: int = 16) -> None:
        self.log = log
        self.tensors = (torch.arange(float(n)), torch.arange(n))  # foldable: in-memory tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tensors[0][index], self.tensors[1][index]


class Stream(Recorder, torch.utils.data.IterableDataset[Any]):
    def __init__(self, log: Path, n: int = 16) -> None:
        self.log = log
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[tuple[float, int]]:
        return ((float(i), i) for i in range(self.n))


class Scale:
    """A sample transform (not foldable)."""

    def __call__(self, sample: Any, rng: Any) -> Any:
        return sample[0] * 2, sample[1]


class Shift:
    """A foldable sample transform: applied once to in-memory tensors at build time."""

    def __call__(self, sample: Any, rng: Any) -> Any:
        return sample[0] + 1, sample[1]

    def fold(self, tensors: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (tensors[0] + 1, *tensors[1:])


def calls(log: Path) -> Counter[int]:
    return Counter(int(line) for line in log.read_text(encoding="utf-8").split()) if log.exists() else Counter()


def two_epochs(loader: Any) -> None:
    for epoch in range(2):
        loader.set_epoch(epoch)
        assert sum(len(batch[0]) for batch in loader) == 16


SOURCES = {"map": Rows, "iterable": Stream}
WRAPPERS = {"bare": [], "transformed": [Scale()], "folded": [Shift()]}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_in_process_once_with_no_workers(tmp_path: Path, source: str, wrapper: str) -> None:
    log = tmp_path / "resets"
    loader = make_loader(SOURCES[source](log), {"batch_size": 4, "shuffle": True}, transforms=WRAPPERS[wrapper])
    if (source, wrapper) == ("map", "folded"):
        assert loader.fast_path  # folding kept the in-memory path, which has no workers
    two_epochs(loader)
    assert calls(log) == Counter({os.getpid(): 1})  # once in this process, not once per epoch


@pytest.mark.slow
@pytest.mark.parametrize("wrapper", ["bare", "transformed"])
@pytest.mark.parametrize("source", sorted(SOURCES))
def test_once_in_every_worker(tmp_path: Path, source: str, wrapper: str) -> None:
    log = tmp_path / "resets"
    # An explicit collate keeps in-memory tensors off the fast path, so workers do run.
    loader = make_loader(
        SOURCES[source](log),
        {"batch_size": 4, "num_workers": 2},
        transforms=WRAPPERS[wrapper],
        collate=torch.utils.data.default_collate,
    )
    assert not getattr(loader, "fast_path", False)
    two_epochs(loader)
    seen = calls(log)
    # Two fresh workers per epoch, each resetting its copy once; the main process never does.
    assert len(seen) == 4 and set(seen.values()) == {1} and os.getpid() not in seen


def test_a_wrapper_defining_reset_state_is_called_instead_of_what_it_wraps(tmp_path: Path) -> None:
    class Forwarding(torch.utils.data.Subset[Any]):
        def reset_state(self) -> None:
            (tmp_path / "outer").write_text("called", encoding="utf-8")

    inner = Rows(tmp_path / "inner")
    loader = make_loader(Forwarding(inner, list(range(8))), {"batch_size": 4})
    list(loader)
    assert (tmp_path / "outer").exists() and not (tmp_path / "inner").exists()
    plain = make_loader(torch.utils.data.ConcatDataset([inner, Rows(tmp_path / "inner")]), {"batch_size": 4})
    list(plain)
    assert calls(tmp_path / "inner") == Counter({os.getpid(): 2})  # each dataset of the concat, once


@pytest.mark.slow
def test_persistent_workers_reset_once_for_all_epochs(tmp_path: Path) -> None:
    log = tmp_path / "resets"
    params = {"batch_size": 4, "num_workers": 2, "persistent_workers": True}
    loader = make_loader(Rows(log), params, transforms=[Scale()])
    two_epochs(loader)
    seen = calls(log)
    assert len(seen) == 2 and set(seen.values()) == {1} and os.getpid() not in seen


def test_folded_with_workers_resets_in_process(tmp_path: Path) -> None:
    # Folding keeps the batched fast path, which gathers in this process: no worker runs.
    log = tmp_path / "resets"
    loader = make_loader(Rows(log), {"batch_size": 4, "num_workers": 2}, transforms=[Shift()])
    assert loader.fast_path
    two_epochs(loader)
    assert calls(log) == Counter({os.getpid(): 1})
