"""Predictions: the task's predict_step over a split, a dataset table or another rank's
share, written in dataset order with each sample's index (in-process, on the toy plugin)."""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from core_helpers import HERMETIC_ENV, TOY_PLUGIN, write

import runner
from runner._contract.errors import PluginError, RunnerError
from runner._inference.predict import PredictJob, predict, predict_worker
from runner._inference.rundir import open_run


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def run_dir(toy_dir: Path) -> Path:
    return runner.fit(toy_dir / "toy.toml", run_dir=toy_dir / "run").run_dir


def toy_tensors(split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The toy dataset's samples, made the way toy_plugin makes them (not through runner)."""
    spec = importlib.util.spec_from_file_location("toy_data_for_tests", TOY_PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x, y = module._tensors(split, n, 4)
    return x, y


def by_hand(run_dir: Path, inputs: torch.Tensor) -> torch.Tensor:
    """The toy model (one Linear layer) applied to ``inputs`` with the saved weights."""
    from safetensors.torch import load_file

    weights = load_file(str(run_dir / "model.safetensors"))
    return inputs @ weights["weight"].T + weights["bias"]


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predictions_on_a_split_equal_the_model_applied_by_hand(run_dir: Path) -> None:
    result = predict(open_run(run_dir), split="val")
    assert result.output == run_dir / "predictions" / "val.main.jsonl" and result.rows == 32
    written = rows(result.output)
    assert [r["index"] for r in written] == list(range(32))
    expected = by_hand(run_dir, toy_tensors("val", 32)[0])
    assert torch.allclose(torch.tensor([r["output"] for r in written]), expected, atol=1e-6)


def test_a_dataset_table_is_checked_and_batched_like_the_recipe(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.jsonl"
    result = predict(open_run(run_dir), data='{ name = "toy", split = "test", n = 10 }', output=out)
    written = rows(out)
    assert result.rows == 10 and [r["index"] for r in written] == list(range(10))
    expected = by_hand(run_dir, toy_tensors("test", 10)[0])
    assert torch.allclose(torch.tensor([r["output"] for r in written]), expected, atol=1e-6)
    with pytest.raises(
        RunnerError, match=r"--data: dataset 'toy' \(plugin .*\): nn: unknown key \(did you mean 'n'\?\)"
    ):
        predict(open_run(run_dir), data='{ name = "toy", nn = 3 }', output=out)
    with pytest.raises(RunnerError, match=r"unknown dataset 'tyo' \(did you mean 'toy'\?\)"):
        predict(open_run(run_dir), data='{ name = "tyo" }', output=out)


@pytest.mark.slow  # takes seconds
def test_parquet_holds_the_same_rows(run_dir: Path, tmp_path: Path) -> None:
    parquet = pytest.importorskip("pyarrow.parquet")
    predict(open_run(run_dir), split="val", output=tmp_path / "val.parquet")
    predict(open_run(run_dir), split="val", output=tmp_path / "val.jsonl")
    table = parquet.read_table(tmp_path / "val.parquet").to_pylist()
    lines = rows(tmp_path / "val.jsonl")
    assert [r["index"] for r in table] == [r["index"] for r in lines]
    assert torch.allclose(torch.tensor([r["output"] for r in table]), torch.tensor([r["output"] for r in lines]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "say what to predict on: --split test"),
        ({"split": "val", "data": "x.csv"}, "--split NAME .* or --data TABLE_OR_FILE .*, not both"),
        ({"split": "test"}, "--split test: no such split in the recipe; choose one of train, val.main"),
        ({"data": "missing.csv"}, "--data missing.csv: no such file"),
        ({"data": "{ name = 3 }"}, "expected a table naming a dataset"),
    ],
)
def test_what_to_predict_on_is_one_clear_choice(run_dir: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(RunnerError, match=message):
        predict(open_run(run_dir), **kwargs)


def test_a_data_file_needs_a_dataset_named_like_its_extension(run_dir: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "new.xyz", "1,2\n")
    with pytest.raises(RunnerError, match=r"no registered dataset reads .xyz files .* --data '\{ name = "):
        predict(open_run(run_dir), data=str(data))


BAD_TASK = """
from runner import Task, StepOutput, hookimpl

class Halves(Task):
    def train_step(self, model, batch, step):
        import torch.nn.functional as F
        x, y = batch
        return StepOutput(F.cross_entropy(model(x), y), {}, len(y))

    val_step = train_step

    def predict_step(self, model, batch, step):
        return {"logits": model(batch[0])[: len(batch[0]) // 2]}

@hookimpl
def register_tasks(register):
    register("halves", Halves)
"""


@pytest.mark.slow  # takes seconds
def test_predict_step_must_return_one_row_per_sample(toy_dir: Path, tmp_path: Path) -> None:
    plugin = write(tmp_path / "halves.py", BAD_TASK)
    run_dir = runner.fit(toy_dir / "toy.toml", overrides=["task.name=halves"], run_dir=tmp_path / "r", plugins=[plugin])
    with pytest.raises(PluginError, match="task Halves: predict_step returned 8 rows for a batch of 16 samples"):
        predict(open_run(run_dir.run_dir), split="val")


class ThreadRanks:
    """``world_size`` ranks as threads of this process: all_reduce_sum sums what every
    rank contributes, so the gather's arithmetic runs without a process group."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.barrier_ = threading.Barrier(world_size)
        self.lock = threading.Lock()
        self.total: torch.Tensor | None = None

    def rank(self, rank: int) -> Any:
        ranks = self

        class Rank:
            is_primary = rank == 0
            world_size = ranks.world_size

            def __init__(self) -> None:
                self.rank = rank

            def device(self, requested: str) -> torch.device:
                return torch.device("cpu")

            def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
                ranks.barrier_.wait()
                with ranks.lock:
                    ranks.total = tensor.clone() if ranks.total is None else ranks.total + tensor
                ranks.barrier_.wait()
                result = ranks.total.clone()
                ranks.barrier_.wait()
                ranks.total = None
                return result

            def barrier(self) -> None:
                ranks.barrier_.wait()

        return Rank()


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_share_the_data_and_the_file_keeps_dataset_order(run_dir: Path, tmp_path: Path, world_size: int) -> None:
    from runner._inference.data import select

    trained = open_run(run_dir)
    chosen = select(trained.recipe, trained.plugins.registry, trained.meta, data=None, split="val")
    single = predict(trained, split="val", output=tmp_path / "single.jsonl")
    job = PredictJob(trained.recipe, run_dir, trained.info, chosen.split, tmp_path / "ranks.jsonl", "jsonl")
    job.plugins = trained.plugins
    ranks = ThreadRanks(world_size)  # 32 samples: 2 ranks split evenly, 3 ranks pad the last
    errors: list[BaseException] = []

    def work(rank: int) -> None:
        try:
            predict_worker(job, ranks.rank(rank))
        except BaseException as exc:
            errors.append(exc)
            ranks.barrier_.abort()

    threads = [threading.Thread(target=work, args=(rank,)) for rank in range(world_size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert rows(tmp_path / "ranks.jsonl") == rows(single.output)
