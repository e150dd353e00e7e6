"""arrow_shards on small generated shards: every sample exactly once per epoch across ranks
and loader workers, the same batches for any number of workers, exact mid-epoch resume,
the core samplers' padding and cutting rules, and a few shards mapped at a time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("pyarrow")

from runner import DataError, RunnerError
from runner._data.build import make_loader
from runner_datasets import arrow_shards
from runner_datasets.arrow_shards import ArrowShards, write_shards


def make_shards(directory: Path, count: int = 96, per_shard: int = 20) -> list[str]:
    """``count`` samples ``(x, y)``: ``x`` a (2, 3) block of the sample id, ``y`` the id;
    shards of ``per_shard`` rows, written in chunks that straddle shard boundaries."""

    def chunks() -> Any:
        for start in range(0, count, 7):
            ids = np.arange(start, min(start + 7, count))
            yield {"x": np.repeat(ids.astype(np.float32), 6).reshape(-1, 2, 3), "y": ids}

    return [str(p) for p in write_shards(directory, chunks(), rows_per_shard=per_shard)]


def loader(files: list[str], *, rank: int = 0, world: int = 1, workers: int = 0, **params: Any) -> Any:
    ctx = SimpleNamespace(rank=rank, world_size=world, seed=5)
    return make_loader(ArrowShards(files), {"batch_size": 8, "num_workers": workers, **params}, ctx=ctx)


def ids(batches: Any) -> list[int]:
    found: list[int] = []
    for x, y in batches:
        assert x.shape[1:] == (2, 3) and torch.equal(x[:, 1, 2], y.float())  # fields stay aligned
        found += y.tolist()
    return found


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    return make_shards(tmp_path / "shards")


def test_shards_meta_and_fields(files: list[str]) -> None:
    stream = ArrowShards(files)
    assert len(files) == 5 and stream.rows == [20, 20, 20, 20, 16] and stream.fields == ["x", "y"]
    assert stream.meta == {"in_features": 6, "num_classes": 96, "task": "classification"}
    with pytest.raises(DataError, match=r"shard-000000\.arrow: no field 'z'; fields: x, y"):
        ArrowShards(files, ["x", "z"])


def test_an_epoch_is_every_sample_once_in_a_seeded_order(files: list[str]) -> None:
    first = loader(files)
    epoch0 = ids(first)
    assert sorted(epoch0) == list(range(96)) and epoch0 != list(range(96))  # shuffled
    assert ids(loader(files)) == epoch0  # a pure function of (seed, epoch)
    first.set_epoch(1)
    assert sorted(ids(first)) == list(range(96)) and ids(first) != epoch0
    assert ids(make_loader(ArrowShards(files, shuffle=False), {"batch_size": 8})) == list(range(96))


def fake_workers(monkeypatch: pytest.MonkeyPatch, loaders: list[Any], workers: int) -> list[list[int]]:
    """Each loader's batches as torch's loader would deliver them from ``workers`` workers
    (round robin), with each worker's share computed by the dataset itself."""
    delivered = []
    for each in loaders:
        stream = each.dataset
        shares = []
        for worker in range(workers):
            info = SimpleNamespace(num_workers=workers, id=worker)
            monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
            shares.append([batch[1].tolist() for batch in stream])
        monkeypatch.undo()
        order = [
            b for round_ in zip(*[s + [None] * (len(shares[0]) - len(s)) for s in shares], strict=True) for b in round_
        ]
        delivered.append([i for b in order if b is not None for i in b])
    return delivered


def test_two_ranks_by_two_workers_see_every_sample_once(files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    ranks = [loader(files, rank=r, world=2) for r in range(2)]
    per_rank = fake_workers(monkeypatch, ranks, workers=2)
    seen = Counter(i for rank in per_rank for i in rank)
    assert seen == Counter(range(96))  # exactly once, across ranks and workers
    assert per_rank == [ids(r) for r in ranks]  # the same batches as without workers
    assert [len(r) for r in ranks] == [6, 6]


@pytest.mark.slow
def test_two_ranks_by_two_worker_processes(files: list[str]) -> None:
    per_rank = [ids(loader(files, rank=r, world=2, workers=2)) for r in range(2)]
    assert Counter(i for rank in per_rank for i in rank) == Counter(range(96))
    assert per_rank == [ids(loader(files, rank=r, world=2)) for r in range(2)]  # any number of workers


@pytest.mark.parametrize(("drop_last", "expected"), [(False, 34), (True, 32)])
def test_uneven_ranks_are_padded_or_cut_like_the_core_samplers(tmp_path: Path, drop_last: bool, expected: int) -> None:
    files = make_shards(tmp_path, count=100, per_shard=30)
    per_rank = [ids(loader(files, rank=r, world=3, drop_last=drop_last)) for r in range(3)]
    assert [len(r) for r in per_rank] == ([expected] * 3 if not drop_last else [32, 32, 32])
    seen = Counter(i for rank in per_rank for i in rank)
    if drop_last:
        assert sum(seen.values()) == 96 and set(seen.values()) == {1}  # the tail of 100 % 3 is cut
    else:
        assert set(seen) == set(range(100)) and sum(seen.values()) == 102  # 2 samples padded from the start


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_resume_mid_epoch_yields_exactly_the_remaining_batches(files: list[str], workers: int) -> None:
    whole = loader(files, rank=1, world=2, workers=workers)
    whole.set_epoch(3)
    expected = [(x.clone(), y.clone()) for x, y in whole]
    state = whole.state_dict()
    resumed = loader(files, rank=1, world=2, workers=workers)
    resumed.load_state_dict(state, batches_consumed=4)  # as the engine does from a checkpoint
    rest = list(resumed)
    assert len(rest) == len(expected) - 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(rest, expected[4:], strict=True))
    assert [len(y) for _, y in list(resumed)] == [len(y) for _, y in expected]  # the next pass is whole


def test_a_resume_reads_nothing_it_skips(files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stream = make_loader(ArrowShards(files, shuffle=False), {"batch_size": 8})
    opened: list[str] = []
    real = arrow_shards._open
    monkeypatch.setattr(arrow_shards, "_open", lambda path: opened.append(path) or real(path))
    stream.skip(10)  # 80 samples: the first four shards are behind
    assert ids(stream) == list(range(80, 96)) and opened == [files[4]]


def test_at_most_two_shards_are_mapped_at_a_time(files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    peak = 0
    real_get = arrow_shards._OpenShards.get

    def get(self: Any, shard: int) -> Any:
        nonlocal peak
        found = real_get(self, shard)
        peak = max(peak, len(self.open))
        return found

    monkeypatch.setattr(arrow_shards._OpenShards, "get", get)
    assert sorted(ids(loader(files, batch_size=7))) == list(range(96))
    assert peak == 2


def test_it_takes_no_collate_and_no_sample_transforms(files: list[str]) -> None:
    class Noise:
        def __call__(self, sample: Any, rng: Any) -> Any:
            return sample

    with pytest.raises(RunnerError, match="shards and orders its stream itself: it takes no sample or stream"):
        make_loader(ArrowShards(files), {"batch_size": 4}, transforms=[Noise()])
    with pytest.raises(RunnerError, match="yields whole batches: remove the split's collate"):
        make_loader(ArrowShards(files), {"batch_size": 4}, collate=torch.utils.data.default_collate)


def test_strings_and_ragged_fields_come_as_lists(tmp_path: Path) -> None:
    rows = {"text": ["a", "bb", "ccc"], "tokens": [[1], [2, 3], [4, 5, 6]], "y": np.array([0, 1, 0])}
    files = [str(p) for p in write_shards(tmp_path, [rows], rows_per_shard=2, meta={"num_classes": 2})]
    stream = ArrowShards(files, shuffle=False)
    assert stream.meta == {"num_classes": 2}
    text, tokens, y = next(iter(make_loader(stream, {"batch_size": 3})))
    assert text == ["a", "bb", "ccc"] and tokens == [[1], [2, 3], [4, 5, 6]] and y.tolist() == [0, 1, 0]


def test_a_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no \*\.arrow shard files in this directory"):
        arrow_shards.shard_files(str(tmp_path))
    with pytest.raises(DataError, match="no shard file matches"):
        arrow_shards.shard_files(str(tmp_path / "*.arrow"))


def processed_output(cache: Path, fmt: str) -> None:
    """A processed output of two record shards, as `runner process` writes it."""
    from runner._processing.cache import Cache

    store = Cache(cache, fmt)
    store.write_shard("k0", [{"text": "a", "ids": [1], "y": 0}, {"text": "bb", "ids": [2, 3], "y": 1}])
    store.write_shard("k1", {"text": ["ccc"], "ids": [[4, 5, 6]], "y": [1]})
    store.write_manifest("recs", {"shards": ["k0", "k1"], "format": fmt})


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_processed_serves_record_outputs_as_rows(tmp_path: Path, fmt: str) -> None:
    from runner_datasets.sources import processed

    processed_output(tmp_path, fmt)
    rows = processed(output="recs", fields=["text", "ids", "y"], cache_dir=str(tmp_path))
    assert len(rows) == 3 and rows.meta == {"rows": 3, "fields": ["text", "ids", "y"]}
    text, tokens, y = rows[2]
    assert text == "ccc" and torch.equal(tokens, torch.tensor([4, 5, 6])) and y == 1
    with pytest.raises(DataError, match="no field 'label'; fields: text, ids, y"):
        processed(output="recs", fields=["label"], cache_dir=str(tmp_path))


def test_arrow_shards_streams_a_processed_arrow_output(tmp_path: Path) -> None:
    processed_output(tmp_path, "arrow")
    stream = arrow_shards.from_recipe(
        path=[], output="recs", cache_dir=str(tmp_path), fields=["text", "y"], shuffle=False, seed=0
    )
    text, y = next(iter(make_loader(stream, {"batch_size": 3})))  # a batch across both shards
    assert text == ["a", "bb", "ccc"] and y.tolist() == [0, 1, 1]
    processed_output(tmp_path / "pq", "parquet")
    with pytest.raises(DataError, match=r"stored as parquet: arrow_shards streams format = \"arrow\" outputs"):
        arrow_shards.from_recipe(
            path=[], output="recs", cache_dir=str(tmp_path / "pq"), fields=[], shuffle=False, seed=0
        )
