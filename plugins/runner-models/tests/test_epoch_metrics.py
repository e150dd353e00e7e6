"""Whole-epoch metrics of the bundled tasks (``[task] metrics = [...]``): values equal to a
reference computed over the whole epoch, records, the confusion matrix file, validation of
names, and the same values from 2 DDP processes as from one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from runner.testing import runner_command
from runner_models import plugin as models_plugin
from runner_models.components.metrics import classification_metrics, regression_metrics
from runner_models.metrics import EpochMetrics, gather_with

ROOT = Path(__file__).resolve().parents[3]
DIGITS = ROOT / "recipes" / "digits.toml"
CLASSIFICATION = ["accuracy", "top3_accuracy", "f1_macro", "f1_micro", "precision_macro", "recall_macro", "auroc"]


class OneProcess:
    world_size, rank = 1, 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def batches(seed: int = 0, n: int = 200, classes: int = 4, size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g)
    targets = torch.randint(0, classes, (n,), generator=g)
    logits[torch.arange(n), targets] += 1.0  # better than chance
    return [(logits[i : i + size], targets[i : i + size]) for i in range(0, n, size)]


@pytest.mark.slow  # takes seconds
def test_classification_metrics_are_those_of_the_whole_epoch() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    metrics = EpochMetrics([*CLASSIFICATION, "confusion_matrix"], "classification")
    metrics.backend = OneProcess()
    data = batches()
    for logits, targets in data:
        metrics.update(logits, targets)
    scalars, others = metrics.compute()
    logits = torch.cat([b[0] for b in data])
    targets = torch.cat([b[1] for b in data])
    predicted = logits.argmax(1).numpy()
    y = targets.numpy()
    assert scalars["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, predicted), abs=1e-6)
    assert scalars["f1_macro"] == pytest.approx(sklearn_metrics.f1_score(y, predicted, average="macro"), abs=1e-6)
    assert scalars["f1_micro"] == pytest.approx(sklearn_metrics.f1_score(y, predicted, average="micro"), abs=1e-6)
    assert scalars["precision_macro"] == pytest.approx(
        sklearn_metrics.precision_score(y, predicted, average="macro"), abs=1e-6
    )
    assert scalars["recall_macro"] == pytest.approx(
        sklearn_metrics.recall_score(y, predicted, average="macro"), abs=1e-6
    )
    probabilities = logits.softmax(1).numpy()
    assert scalars["auroc"] == pytest.approx(
        sklearn_metrics.roc_auc_score(y, probabilities, multi_class="ovr", average="macro"), abs=1e-5
    )
    assert scalars["top3_accuracy"] == pytest.approx(
        sklearn_metrics.top_k_accuracy_score(y, probabilities, k=3), abs=1e-6
    )
    assert others["confusion_matrix"] == sklearn_metrics.confusion_matrix(y, predicted).tolist()
    # not the mean of per-batch F1 scores
    per_batch = [sklearn_metrics.f1_score(t.numpy(), lg.argmax(1).numpy(), average="macro") for lg, t in data]
    assert abs(sum(per_batch) / len(per_batch) - scalars["f1_macro"]) > 1e-3


def test_regression_metrics() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    metrics = EpochMetrics(["mae", "mse", "rmse", "r2"], "regression")
    g = torch.Generator().manual_seed(1)
    predictions, targets = torch.randn(100, 1, generator=g), torch.randn(100, generator=g)
    for i in range(0, 100, 30):
        metrics.update(predictions[i : i + 30], targets[i : i + 30])
    scalars, _ = metrics.compute()
    p, y = predictions.squeeze(1).numpy(), targets.numpy()
    assert scalars["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(y, p), abs=1e-5)
    assert scalars["mse"] == pytest.approx(sklearn_metrics.mean_squared_error(y, p), abs=1e-5)
    assert scalars["rmse"] == pytest.approx(sklearn_metrics.mean_squared_error(y, p) ** 0.5, abs=1e-5)
    assert scalars["r2"] == pytest.approx(sklearn_metrics.r2_score(y, p), abs=1e-5)


def test_gather_with_a_single_process_returns_the_tensor() -> None:
    gathered = gather_with(OneProcess())(torch.tensor([[1, 2, 3]]))
    assert len(gathered) == 1 and gathered[0].tolist() == [[1, 2, 3]] and gathered[0].dtype == torch.int64
    assert gather_with(OneProcess())(torch.tensor(2.5))[0].item() == 2.5


def test_metric_names_are_checked() -> None:
    assert classification_metrics(["f1_macro", "top2_accuracy", "confusion_matrix"]) is None
    problem = classification_metrics(["f1_makro"])
    assert problem is not None and "'f1_makro'" in problem and "did you mean 'f1_macro'" in problem
    assert classification_metrics(["auroc", "auroc"]) == "metric 'auroc' is listed twice"
    assert regression_metrics(["r2", "mae"]) is None
    assert regression_metrics(["accuracy"]) is not None


def test_recipe_check_reports_an_unknown_metric(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    with pytest.raises(Exception, match=r"task\.metrics: unknown metric 'f1_makro'"):
        runner_tester.recipe(DIGITS, datasets_plugin, models_plugin, overrides=('task.metrics=["f1_makro"]',))


def test_a_run_records_epoch_metrics_and_the_confusion_matrix(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    names = '["f1_macro", "auroc", "confusion_matrix"]'
    outcome = runner_tester.run(
        DIGITS, datasets_plugin, models_plugin, max_steps=4, overrides=(f"task.metrics={names}", "run.val_every=2")
    )
    val = [r for r in outcome.records if r["stage"] == "val"]
    test = [r for r in outcome.records if r["stage"] == "test"]
    assert [r["step"] for r in val] == [2, 4]
    for record in [*val, *test]:
        assert 0 < record["f1_macro"] <= 1 and 0.5 < record["auroc"] <= 1
        assert "confusion_matrix" not in record  # not a scalar: in its own file
    matrices = json.loads((outcome.run_dir / "confusion_matrix.json").read_text(encoding="utf-8"))
    assert set(matrices) == {"val/main", "test/main"}
    assert matrices["val/main"]["step"] == 4
    matrix = matrices["test/main"]["matrix"]
    assert len(matrix) == 10 and sum(map(sum, matrix)) == 269  # every test sample once
    summary = json.loads((outcome.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["extras"]["confusion_matrix"] == matrices
    assert summary["metrics"]["val/main"]["f1_macro"] == val[-1]["f1_macro"]


@pytest.mark.slow
def test_two_ddp_processes_compute_the_same_epoch_metrics_as_one(tmp_path: Path) -> None:
    pytest.importorskip("runner_ddp")
    pytest.importorskip("runner_datasets")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = "1"
    names = '["accuracy", "f1_macro", "f1_micro", "precision_macro", "recall_micro", "auroc", "confusion_matrix"]'
    # lr = 0: both runs evaluate the same weights, so only the metrics' synchronisation can differ
    common = ["-o", f"task.metrics={names}", "-o", "optimizer.name=sgd", "-o", "optimizer.lr=0.0"]
    common += ["-o", "run.max_steps=2", "-o", "run.device=cpu", "-o", "scheduler.name=constant"]
    results = {}
    for label, extra in {
        "single": [],
        "ddp": ["-o", "run.backend=ddp", "-o", "backend.nproc_per_node=2", "-o", "backend.start_method=fork"],
    }.items():
        run_dir = tmp_path / label
        done = subprocess.run(
            [*runner_command(), "run", str(DIGITS), "--run-dir", str(run_dir), "--no-progress", *common, *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        evals = {f"{r['stage']}/{r['key']}": r for r in records if r["stage"] in ("val", "test")}
        results[label] = (evals, json.loads((run_dir / "confusion_matrix.json").read_text()))
    single, ddp = results["single"], results["ddp"]
    assert set(single[0]) == set(ddp[0]) == {"val/main", "test/main"}
    for group, record in single[0].items():
        for name in ("accuracy", "f1_macro", "f1_micro", "precision_macro", "recall_micro", "auroc"):
            assert ddp[0][group][name] == pytest.approx(record[name], abs=1e-6), (group, name)
    assert {g: v["matrix"] for g, v in ddp[1].items()} == {g: v["matrix"] for g, v in single[1].items()}
