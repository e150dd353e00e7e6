"""Resume and sharding properties of the data layer (runner._data).

A resumed loader yields exactly the batches an uninterrupted one would have yielded from
the stop position on, for any length, batch size, drop_last, world size, shuffle and
stop position; skipped samples are never fetched; random augmentations do not depend on
the number of workers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from runner._contract.context import BuildContext
from runner._data.build import make_loader
from runner._data.loader import IterableLoader, Loader
from runner._data.transforms import IterablePipeline, ShuffleBuffer, TransformedDataset


def ctx_for(rank: int = 0, world_size: int = 1, seed: int = 0) -> BuildContext:
    return BuildContext(recipe=None, seed=seed, run_dir=Path("."), rank=rank, world_size=world_size)  # type: ignore[arg-type]


class Rows(torch.utils.data.Dataset[Any]):
    """Map-style rows without ``tensors``: the general (DataLoader) path."""

    def __init__(self, n: int, width: int = 3) -> None:
        self.x = torch.arange(n * width, dtype=torch.float32).reshape(n, width)
        self.y = torch.arange(n)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


class Counting(Rows):
    """Rows that append every fetched index to a file (works from worker processes)."""

    def __init__(self, n: int, log: Path) -> None:
        super().__init__(n)
        self.log = log

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with self.log.open("a") as handle:
            handle.write(f"{index}\n")
        return super().__getitem__(index)

    def fetched(self) -> list[int]:
        return [int(line) for line in self.log.read_text().split()] if self.log.exists() else []


class Noise:
    """A random augmentation drawing from the keyed RNG it is given."""

    def __call__(self, sample: Any, rng: np.random.Generator) -> Any:
        x, y = sample
        return x + torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)), y


def labels(batches: list[Any]) -> list[list[int]]:
    return [b[1].tolist() for b in batches]


def assert_same(first: list[Any], second: list[Any]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert len(a) == len(b)
        for ta, tb in zip(a, b, strict=True):
            assert torch.equal(ta, tb)


def loader(
    dataset: Any, *, batch_size: int, shuffle: bool, drop_last: bool, rank: int = 0, world_size: int = 1, **kw: Any
) -> Loader:
    built = make_loader(
        dataset,
        {"batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last, **kw},
        ctx=ctx_for(rank, world_size, seed=11),
    )
    assert isinstance(built, Loader)
    return built


# -- property tests: resume and sharding, fast and general paths --------------------------


@given(
    length=st.integers(1, 70),
    batch_size=st.integers(1, 9),
    drop_last=st.booleans(),
    world_size=st.integers(1, 4),
    shuffle=st.booleans(),
    epoch=st.integers(0, 3),
    stop=st.integers(0, 20),
    fast=st.booleans(),
)
@settings(max_examples=120, deadline=None)
def test_resumed_loader_yields_exactly_the_remaining_batches(
    length: int, batch_size: int, drop_last: bool, world_size: int, shuffle: bool, epoch: int, stop: int, fast: bool
) -> None:
    rows = Rows(length)
    dataset: Any = torch.utils.data.TensorDataset(rows.x, rows.y) if fast else rows
    seen: Counter[int] = Counter()
    per_rank = set()
    for rank in range(world_size):
        full_loader = loader(
            dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, rank=rank, world_size=world_size
        )
        assert full_loader.fast_path == fast
        full_loader.set_epoch(epoch)
        full = list(full_loader)
        assert len(full) == len(full_loader)
        per_rank.add(len(full))
        seen.update(i for b in full for i in b[1].tolist())
        # A fresh loader (a resumed process) told to skip `stop` batches of the same epoch.
        resumed = loader(
            dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, rank=rank, world_size=world_size
        )
        resumed.set_epoch(epoch)
        resumed.skip(stop)
        assert_same(list(resumed), full[stop:])
    assert len(per_rank) == 1  # every rank takes the same number of steps
    if not drop_last:
        # Padding rule: the epoch is padded from its start to a multiple of world_size, so
        # every sample appears, and a padded one at most once more than any other.
        assert set(seen) == set(range(length))
        assert max(seen.values()) - min(seen.values()) <= 1
        if length % world_size == 0:
            assert set(seen.values()) == {1}
    else:
        assert max(seen.values(), default=1) == 1  # the tail is dropped, nothing repeats


@given(length=st.integers(1, 60), batch_size=st.integers(1, 8), stop=st.integers(0, 12), shuffle=st.booleans())
@settings(max_examples=60, deadline=None)
def test_resume_from_sampler_state_dict(length: int, batch_size: int, stop: int, shuffle: bool) -> None:
    rows = Rows(length)
    first = loader(
        torch.utils.data.TensorDataset(rows.x, rows.y), batch_size=batch_size, shuffle=shuffle, drop_last=False
    )
    first.set_epoch(2)
    full = list(first)
    state = first.state_dict()
    second = loader(
        torch.utils.data.TensorDataset(rows.x, rows.y), batch_size=batch_size, shuffle=shuffle, drop_last=False
    )
    second.load_state_dict(state, batches_consumed=stop)
    assert second.epoch == 2
    assert_same(list(second), full[stop:])


# -- workers ---------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("persistent", [False, True])
def test_resume_with_two_workers_mid_epoch_equals_uninterrupted(persistent: bool) -> None:
    def make() -> Loader:
        dataset = TransformedDataset(Rows(37), [Noise()], seed=5)
        return loader(
            dataset, batch_size=4, shuffle=True, drop_last=False, num_workers=2, persistent_workers=persistent
        )

    reference = make()
    epochs = []
    for epoch in range(2):
        reference.set_epoch(epoch)
        epochs.append(list(reference))
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])  # fresh augmentation each epoch
    made = [reference]
    for epoch, stop in ((0, 3), (1, 7)):
        resumed = make()
        made.append(resumed)
        resumed.set_epoch(epoch)
        resumed.skip(stop)
        assert_same(list(resumed), epochs[epoch][stop:])
    for each in made:  # else persistent workers stop when garbage collected, in a later test, 5 s each
        each.close()


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("num_workers", [0, 2])
def test_skipped_samples_are_never_fetched(tmp_path: Path, num_workers: int) -> None:
    dataset = Counting(50, tmp_path / "fetched.txt")
    reference = loader(Rows(50), batch_size=5, shuffle=True, drop_last=False)
    reference.set_epoch(1)
    full = labels(list(reference))
    resumed = loader(dataset, batch_size=5, shuffle=True, drop_last=False, num_workers=num_workers)
    resumed.set_epoch(1)
    resumed.skip(7)
    assert labels(list(resumed)) == full[7:]
    remaining = [i for batch in full[7:] for i in batch]
    assert sorted(dataset.fetched()) == sorted(remaining)  # nothing of the first 7 batches


@pytest.mark.slow  # starts processes
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # more workers than CI cores
def test_augmentation_is_identical_for_0_1_and_4_workers() -> None:
    outputs = []
    for workers in (0, 1, 4):
        dataset = TransformedDataset(Rows(41), [Noise()], seed=3)
        built = loader(dataset, batch_size=6, shuffle=True, drop_last=False, num_workers=workers)
        built.set_epoch(4)
        outputs.append(list(built))
    assert_same(outputs[0], outputs[1])
    assert_same(outputs[0], outputs[2])


# -- iterable sources: the same batches for any worker count, exact resume -----------------


class Stream(torch.utils.data.IterableDataset[Any]):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Any:
        for i in range(self.n):
            yield torch.tensor([float(i)]), torch.tensor(i)


def iterable_loader(workers: int, shuffle_buffer: int | None = None, drop_last: bool = False) -> IterableLoader:
    transforms: list[Any] = [Noise()]
    if shuffle_buffer:
        transforms.append(ShuffleBuffer(shuffle_buffer))
    built = make_loader(
        Stream(45),
        {"batch_size": 4, "num_workers": workers, "drop_last": drop_last},
        ctx=ctx_for(seed=9),
        transforms=transforms,
    )
    assert isinstance(built, IterableLoader) and isinstance(built.dataset, IterablePipeline)
    return built


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("shuffle_buffer", [None, 8])
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # more workers than CI cores
def test_iterable_pipeline_batches_do_not_depend_on_workers_and_resume_exactly(shuffle_buffer: int | None) -> None:
    runs = []
    for workers in (0, 2, 3):
        built = iterable_loader(workers, shuffle_buffer)
        built.set_epoch(1)
        runs.append(list(built))
    assert_same(runs[0], runs[1])
    assert_same(runs[0], runs[2])
    assert len(runs[0]) == len(iterable_loader(0)) == 12
    if shuffle_buffer:
        assert sorted(i for b in labels(runs[0]) for i in b) == list(range(45))
        assert [i for b in labels(runs[0]) for i in b] != list(range(45))
    for workers in (0, 2):
        resumed = iterable_loader(workers, shuffle_buffer)
        resumed.set_epoch(1)
        resumed.skip(5)
        assert_same(list(resumed), runs[0][5:])


def test_iterable_pipeline_shards_over_ranks() -> None:
    seen = []
    for rank in range(3):
        built = make_loader(Stream(10), {"batch_size": 2}, ctx=ctx_for(rank, 3))
        seen += [i for b in labels(list(built)) for i in b]
    assert sorted(seen) == list(range(10))


# -- batch transforms and prefetch ---------------------------------------------------------


class Scale:
    level = "batch"

    def __call__(self, batch: Any, rng: np.random.Generator) -> Any:
        x, y = batch
        return x * float(rng.uniform(1, 2)), y


def test_batch_transforms_are_keyed_by_batch_number_and_resume() -> None:
    rows = Rows(30)
    dataset = torch.utils.data.TensorDataset(rows.x, rows.y)
    built = make_loader(dataset, {"batch_size": 4}, ctx=ctx_for(), transforms=[Scale()])
    assert isinstance(built, Loader) and built.fast_path  # a batch transform keeps the fast path
    full = list(built)
    built.skip(3)
    assert_same(list(built), full[3:])
    assert not torch.equal(full[0][0], rows.x[:4])
