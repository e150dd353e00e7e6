"""Resumable samplers and loaders (runner._data).

An epoch's order is a pure function of (seed, epoch); a sampler starts anywhere by index
arithmetic; the loader's tensor fast path yields exactly what the general
``DataLoader`` path yields for the same data.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from core_helpers import TOY, check_recipe
from hypothesis import given, settings
from hypothesis import strategies as st

from runner._contract.context import BuildContext
from runner._data.build import build_dataset, build_loader
from runner._data.loader import Loader
from runner._plugins.manager import PluginManager
from runner._samplers.index import ResumableSampler

# -- ResumableSampler ------------------------------------------------------------------


def test_sequential_order() -> None:
    assert list(ResumableSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def test_shuffled_order_depends_only_on_seed_and_epoch() -> None:
    def order(seed: int, epoch: int) -> list[int]:
        sampler = ResumableSampler(50, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert sorted(order(0, 0)) == list(range(50))
    assert order(0, 0) == order(0, 0)
    assert order(0, 1) != order(0, 0)
    assert order(1, 0) != order(0, 0)


def test_set_start_skips_exactly_and_only_once() -> None:
    sampler = ResumableSampler(20, shuffle=True, seed=3)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_start(7)
    assert list(sampler) == full[7:]
    assert list(sampler) == full  # the next pass starts at the beginning again


@given(
    length=st.integers(0, 60),
    world_size=st.integers(1, 8),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 5),
)
@settings(max_examples=150, deadline=None)
def test_sharding_covers_every_sample(length: int, world_size: int, shuffle: bool, seed: int, epoch: int) -> None:
    shards = []
    for rank in range(world_size):
        sampler = ResumableSampler(length, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        sampler.set_epoch(epoch)
        shards.append(list(sampler))
        assert len(shards[-1]) == len(sampler)  # every rank takes the same number of steps
    counts = Counter(i for shard in shards for i in shard)
    assert set(counts) == set(range(length))
    if length % world_size == 0:
        assert all(count == 1 for count in counts.values())  # each sample exactly once
    else:  # padded from the epoch's start: nobody is seen more than once more than another
        assert max(counts.values()) - min(counts.values()) <= 1
    assert len({len(shard) for shard in shards}) <= 1


@given(
    length=st.integers(0, 60),
    world_size=st.integers(1, 8),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
)
@settings(max_examples=150, deadline=None)
def test_sharding_with_drop_last_sees_each_sample_at_most_once(
    length: int, world_size: int, shuffle: bool, seed: int
) -> None:
    shards = [
        list(ResumableSampler(length, shuffle=shuffle, seed=seed, rank=r, world_size=world_size, drop_last=True))
        for r in range(world_size)
    ]
    seen = [i for shard in shards for i in shard]
    assert len(seen) == len(set(seen)) == length - length % world_size
    assert {len(shard) for shard in shards} == {length // world_size}


@given(length=st.integers(1, 60), world_size=st.integers(1, 4), start=st.integers(0, 20))
@settings(max_examples=100, deadline=None)
def test_set_start_within_a_rank_share(length: int, world_size: int, start: int) -> None:
    for rank in range(world_size):
        sampler = ResumableSampler(length, shuffle=True, seed=1, rank=rank, world_size=world_size)
        full = list(sampler)
        sampler.set_start(start)
        assert list(sampler) == full[start:]


def test_rank_outside_world_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="rank 2 outside world size 2"):
        ResumableSampler(4, shuffle=False, rank=2, world_size=2)


def test_state_dict_round_trip() -> None:
    sampler = ResumableSampler(10, shuffle=True, seed=5)
    sampler.set_epoch(3)
    sampler.set_start(4)
    restored = ResumableSampler(10, shuffle=True, seed=5)
    restored.load_state_dict(sampler.state_dict())
    assert list(restored) == list(sampler)


# -- loaders: the fast path and the general path ---------------------------------------


class Rows:
    """Map-style data without ``.tensors``: the loader must take the general path."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors_ = tensors

    def __len__(self) -> int:
        return len(self.tensors_[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors_)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(23, 3, generator=generator), torch.arange(23)


def loaders(shuffle: bool, drop_last: bool, batch_size: int = 5) -> tuple[Loader, Loader]:
    x, y = data()

    def make(dataset: Any, fast: bool) -> Loader:
        sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=7)
        return Loader(dataset, sampler, batch_size=batch_size, drop_last=drop_last, collate=None, fast_path=fast)

    return make(torch.utils.data.TensorDataset(x, y), True), make(Rows(x, y), False)


def assert_same_batches(first: list[Any], second: list[Any]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert type(a) is type(b)
        assert len(a) == len(b)
        for ta, tb in zip(a, b, strict=True):
            assert ta.dtype == tb.dtype and ta.shape == tb.shape
            assert torch.equal(ta, tb)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_fast_path_yields_what_the_general_path_yields(shuffle: bool, drop_last: bool) -> None:
    fast, general = loaders(shuffle, drop_last)
    for epoch in range(2):
        fast.set_epoch(epoch)
        general.set_epoch(epoch)
        batches = list(fast)
        assert_same_batches(batches, list(general))
        assert len(batches) == len(fast) == len(general) == (4 if drop_last else 5)


@pytest.mark.parametrize("fast_path", [True, False])
def test_skip_resumes_after_n_batches_for_one_pass(fast_path: bool) -> None:
    loader = loaders(shuffle=True, drop_last=False)[0 if fast_path else 1]
    loader.set_epoch(1)
    full = list(loader)
    loader.skip(3)
    assert_same_batches(list(loader), full[3:])
    assert_same_batches(list(loader), full)


def test_foreign_samplers_skip_by_dropping_indices() -> None:
    x, y = data()
    sampler = torch.utils.data.SequentialSampler(range(23))
    loader = Loader(torch.utils.data.TensorDataset(x, y), sampler, batch_size=5, drop_last=False, collate=None)
    loader.skip(2)
    batches = list(loader)
    assert len(batches) == 3 and torch.equal(batches[0][1], torch.arange(10, 15))


def test_build_loader_takes_the_fast_path_only_for_in_memory_tensors(
    toy_manager: PluginManager, tmp_path: Path
) -> None:
    recipe = check_recipe(TOY, toy_manager, tmp_path)
    assert recipe.train is not None
    ctx = BuildContext(recipe=recipe, seed=0, run_dir=tmp_path)
    rows_split = attrs.evolve(recipe.train, dataset=attrs.evolve(recipe.train.dataset, name="toy_rows"))
    built = {}
    for split in (recipe.train, rows_split):
        dataset = build_dataset(split, toy_manager.registry, ctx)
        built[split.dataset.name] = build_loader(split, dataset, toy_manager.registry, ctx, train=True, on_cuda=False)
    assert built["toy"].fast_path and not built["toy_rows"].fast_path
    for epoch in range(2):
        for loader in built.values():
            loader.set_epoch(epoch)
        assert_same_batches(list(built["toy"]), list(built["toy_rows"]))


def test_shuffle_applies_to_training_loaders_only(toy_manager: PluginManager, tmp_path: Path) -> None:
    recipe = check_recipe(TOY, toy_manager, tmp_path, ("data.val.main.loader.shuffle=true",))
    ctx = BuildContext(recipe=recipe, seed=0, run_dir=tmp_path)
    split = recipe.val["main"]
    loader = build_loader(
        split, build_dataset(split, toy_manager.registry, ctx), toy_manager.registry, ctx, train=False, on_cuda=False
    )
    assert isinstance(loader, Loader) and isinstance(loader.sampler, ResumableSampler)
    assert not loader.sampler.shuffle
