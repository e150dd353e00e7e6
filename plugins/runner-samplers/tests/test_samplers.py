"""Resumable samplers: seeded orders, exact mid-epoch resume, rank sharding, the plugin contract."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import BuildContext, DataError, Loader, RecipeError
from runner._data.build import make_loader
from runner._samplers.protocol import declared_resumable
from runner.testing import assert_entry_module_torch_free
from runner_samplers import plugin
from runner_samplers.components import BucketByLength as BucketByLengthComponent
from runner_samplers.components import Distributed, Weighted
from runner_samplers.samplers import BucketByLength, WeightedSampler


def ctx(rank: int = 0, world_size: int = 1) -> BuildContext:
    return BuildContext(recipe=None, seed=0, run_dir=Path("."), rank=rank, world_size=world_size)  # type: ignore[arg-type]


class Sequences(torch.utils.data.Dataset[Any]):
    """Variable-length sequences: sample i has length lengths[i] and label i."""

    def __init__(self, lengths: list[int]) -> None:
        self.lengths_ = lengths

    def __len__(self) -> int:
        return len(self.lengths_)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.full((self.lengths_[index],), float(index)), index


@pytest.mark.slow  # starts processes
def test_entry_module_is_torch_free() -> None:
    assert_entry_module_torch_free("runner_samplers.plugin")


def test_conformance(runner_tester: Any) -> None:
    examples = {("sampler", "weighted"): {"weights": [1.0] * 10}}
    assert runner_tester.check_components(plugin, examples) == []


def test_every_sampler_declares_resumable_without_importing_torch(runner_tester: Any) -> None:
    manager = runner_tester.plugin_manager(plugin)
    for name in ("distributed", "weighted", "bucket_by_length"):
        assert declared_resumable(manager.registry.get("sampler", name)) is True


# -- weighted ---------------------------------------------------------------------------


def test_weighted_draws_follow_the_weights_and_the_seed() -> None:
    sampler = WeightedSampler([0.0, 1.0, 3.0], num_samples=4000, seed=1)
    counts = Counter(sampler)
    assert counts[0] == 0 and 2.5 < counts[2] / counts[1] < 3.5
    again = WeightedSampler([0.0, 1.0, 3.0], num_samples=4000, seed=1)
    assert list(again) == list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != list(again)


def test_weighted_without_replacement_and_class_weights() -> None:
    drawn = list(WeightedSampler([1.0] * 8, replacement=False, seed=2))
    assert sorted(drawn) == list(range(8))
    data = torch.utils.data.TensorDataset(torch.zeros(6, 1), torch.tensor([0, 0, 0, 0, 1, 1]))
    sampler = Weighted(class_weights=[0.0, 1.0], num_samples=50).build(dataset=data, seed=0)
    assert set(sampler) == {4, 5}
    with pytest.raises(DataError, match="class_weights has 1 entries"):
        Weighted(class_weights=[1.0]).build(dataset=data, seed=0)
    with pytest.raises(DataError, match="3 weights for a dataset of 6"):
        Weighted(weights=[1.0, 1.0, 1.0]).build(dataset=data, seed=0)


WEIGHTED_RECIPE = """
[run]
max_steps = 1

[data.train]
dataset = { name = "synthetic", split = "train", num_samples = 4 }
sampler = { name = "weighted" }

[model]
name = "mlp"

[task]
name = "classification"

[optimizer]
name = "sgd"
"""


@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        ("", "set weights (one per sample) or class_weights (one per class)"),
        (", weights = [1.0, 1.0, 1.0, 1.0], class_weights = [1.0, 2.0]", "set weights or class_weights, not both"),
    ],
)
def test_recipe_check_wants_one_kind_of_weights(runner_tester: Any, sampler: str, message: str) -> None:
    import runner_datasets.plugin
    import runner_models.plugin

    text = WEIGHTED_RECIPE.replace('{ name = "weighted" }', f'{{ name = "weighted"{sampler} }}')
    with pytest.raises(RecipeError) as caught:
        runner_tester.recipe(text, plugin, runner_datasets.plugin, runner_models.plugin)
    assert [(p.path, p.message, p.line) for p in caught.value.problems] == [("data.train.sampler.weights", message, 7)]


@given(
    n=st.integers(1, 40),
    draws=st.integers(1, 60),
    world_size=st.integers(1, 4),
    batch_size=st.integers(1, 7),
    stop=st.integers(0, 10),
    epoch=st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_weighted_resume_through_the_loader(
    n: int, draws: int, world_size: int, batch_size: int, stop: int, epoch: int
) -> None:
    data = torch.utils.data.TensorDataset(torch.arange(n, dtype=torch.float32), torch.arange(n))
    for rank in range(world_size):

        def make(rank: int = rank) -> Loader:
            sampler = WeightedSampler(
                [float(i + 1) for i in range(n)], num_samples=draws, seed=3, rank=rank, world_size=world_size
            )
            loader = make_loader(data, {"batch_size": batch_size}, ctx=ctx(rank, world_size), sampler=sampler)
            assert isinstance(loader, Loader) and loader.fast_path
            loader.set_epoch(epoch)
            return loader

        full = [b[1].tolist() for b in make()]
        resumed = make()
        resumed.skip(stop)
        assert [b[1].tolist() for b in resumed] == full[stop:]


# -- bucket_by_length ----------------------------------------------------------------------


def bucket_loader(
    lengths: list[int],
    batch_size: int,
    *,
    shuffle: bool,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    workers: int = 0,
    epoch: int = 0,
    pool_batches: int = 3,
) -> Loader:
    data = Sequences(lengths)
    sampler = BucketByLengthComponent(pool_batches=pool_batches).build(
        dataset=data,
        seed=5,
        batch_size=batch_size,
        loader_shuffle=shuffle,
        loader_drop_last=drop_last,
        rank=rank,
        world_size=world_size,
    )
    from runner_collates.collates import PadCollate

    loader = make_loader(
        data,
        {"batch_size": batch_size, "num_workers": workers},
        ctx=ctx(rank, world_size),
        sampler=sampler,
        collate=PadCollate(),
    )
    assert isinstance(loader, Loader) and not loader.fast_path
    loader.set_epoch(epoch)
    return loader


def test_buckets_group_similar_lengths() -> None:
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (200,), generator=generator).tolist()
    batches = [b["targets"].tolist() for b in bucket_loader(lengths, 8, shuffle=True, pool_batches=25)]
    assert sorted(i for b in batches for i in b) == list(range(200))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 12  # random batches would spread over ~45


@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=60),
    batch_size=st.integers(1, 8),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    world_size=st.integers(1, 4),
    stop=st.integers(0, 10),
    epoch=st.integers(0, 2),
)
@settings(max_examples=60, deadline=None)
def test_bucket_resume_and_rank_coverage(
    lengths: list[int], batch_size: int, shuffle: bool, drop_last: bool, world_size: int, stop: int, epoch: int
) -> None:
    seen: Counter[int] = Counter()
    steps = set()
    for rank in range(world_size):
        options = dict(shuffle=shuffle, drop_last=drop_last, rank=rank, world_size=world_size, epoch=epoch)
        full = [b["targets"].tolist() for b in bucket_loader(lengths, batch_size, **options)]
        steps.add(len(full))
        seen.update(i for b in full for i in b)
        resumed = bucket_loader(lengths, batch_size, **options)
        resumed.skip(stop)
        assert [b["targets"].tolist() for b in resumed] == full[stop:]
    assert len(steps) == 1
    if not drop_last:
        assert set(seen) == set(range(len(lengths)))
    else:
        assert max(seen.values(), default=1) == 1


@pytest.mark.slow  # starts processes
def test_bucket_with_two_workers_resumes_mid_epoch() -> None:
    lengths = [(i * 7) % 23 + 1 for i in range(50)]
    full = [b["inputs"] for b in bucket_loader(lengths, 4, shuffle=True, workers=2, epoch=1)]
    resumed = bucket_loader(lengths, 4, shuffle=True, workers=2, epoch=1)
    resumed.skip(6)
    rest = [b["inputs"] for b in resumed]
    assert len(rest) == len(full) - 6 and all(torch.equal(a, b) for a, b in zip(rest, full[6:], strict=True))


def test_bucket_state_dict_round_trip() -> None:
    sampler = BucketByLength([3, 1, 2, 5, 4, 6], batch_size=2, seed=1)
    sampler.set_epoch(2)
    sampler.set_start(1)
    other = BucketByLength([3, 1, 2, 5, 4, 6], batch_size=2, seed=1)
    other.load_state_dict(sampler.state_dict())
    assert list(other) == list(sampler)


# -- distributed ----------------------------------------------------------------------------


def test_distributed_shards_over_the_context_ranks() -> None:
    data = list(range(10))
    shards = [list(Distributed().build(dataset=data, seed=0, ctx=ctx(r, 3), loader_shuffle=True)) for r in range(3)]
    assert {len(s) for s in shards} == {4}
    assert Counter(i for s in shards for i in s).keys() == set(range(10))
