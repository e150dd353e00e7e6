"""lr_monitor, grad_norm, throughput and model_summary: what they add to records and summaries."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from cb_helpers import DIGITS, FakeRun

from runner_callbacks import plugin as callbacks_plugin
from runner_callbacks.grad_norm import GradNorm
from runner_callbacks.lr_monitor import LRMonitor
from runner_callbacks.model_summary import ModelSummary, summarize, table
from runner_callbacks.throughput import Throughput


def test_lr_monitor_names_every_group() -> None:
    w, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    one = torch.optim.SGD([{"params": [w], "lr": 0.1}, {"params": [b], "lr": 0.01, "name": "bias"}], momentum=0.9)
    two = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    assert LRMonitor(momentum=True).values([one]) == {
        "lr_pg0": 0.1,
        "momentum_pg0": 0.9,
        "lr_bias": 0.01,
        "momentum_bias": 0.9,
    }
    assert LRMonitor().values([one, two]) == {"lr_opt0_pg0": 0.1, "lr_bias": 0.01, "lr_opt1_pg0": 1e-3}


def test_lr_monitor_logs_only_on_logging_steps() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    run = FakeRun(optimizers=[optimizer], log_every=10)
    LRMonitor().on_end_backward(run, 3)
    assert run.logged == {}
    LRMonitor().on_end_backward(run, 9)  # step 10 is in progress
    assert run.logged == {"lr_pg0": 0.5}


def grads_model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    net(torch.randn(5, 4)).pow(2).sum().backward()
    return net


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf])
def test_grad_norm_matches_torch(norm_type: float) -> None:
    net = grads_model()
    expected = torch.nn.utils.get_total_norm([p.grad for p in net.parameters()], norm_type)
    found = GradNorm(norm_type=norm_type, per_layer=True).norms(net)
    assert found["grad_norm"] == pytest.approx(float(expected), rel=1e-6)
    assert set(found) == {"grad_norm", "grad_norm.0", "grad_norm.2"}
    first = torch.nn.utils.get_total_norm([net[0].weight.grad, net[0].bias.grad], norm_type)
    assert found["grad_norm.0"] == pytest.approx(float(first), rel=1e-6)


def test_grad_norm_divides_by_the_loss_scale() -> None:
    net = grads_model()
    run = FakeRun(net, log_every=1)
    true_norm = GradNorm().norms(net)["grad_norm"]
    for p in net.parameters():
        p.grad.mul_(1024.0)

    class Scaler:
        def get_scale(self) -> float:
            return 1024.0

    run.scaler = Scaler()
    GradNorm().on_end_backward(run, 0)
    assert run.logged["grad_norm"] == pytest.approx(true_norm, rel=1e-6)


def test_throughput_from_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 102.0])
    monkeypatch.setattr("runner_callbacks.throughput.time.perf_counter", lambda: next(clock))
    run = FakeRun(log_every=5)
    callback = Throughput()
    callback.on_begin_train(run)
    run.samples_seen, run.data_wait = 640, 0.5
    callback.on_end_backward(run, 4)  # step 5 in progress: 2 s for 5 steps
    assert run.logged == {"samples_per_sec": 320.0, "step_time": 0.4, "data_wait": 0.25}


def test_model_summary_counts_trainable_and_frozen() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
    for p in net[0].parameters():
        p.requires_grad_(False)
    summary = summarize(net, depth=2)
    assert (summary["total"], summary["trainable"], summary["frozen"]) == (23, 8, 15)
    assert [(r["module"], r["trainable"], r["frozen"]) for r in summary["modules"]] == [
        ("0", 0, 15),
        ("1", 8, 0),
        ("1.0", 8, 0),
        ("1.1", 0, 0),
    ]
    assert [r["module"] for r in summarize(net)["modules"]] == ["0", "1"]
    text = table(summary)
    assert text.splitlines()[-1].split() == ["total", "Sequential", "23", "8", "15"]


def test_model_summary_prints_and_stores(capsys: pytest.CaptureFixture[str]) -> None:
    run = FakeRun(torch.nn.Linear(10, 2))
    ModelSummary().on_begin_train(run)
    assert run.summary["model_summary"]["total"] == 22
    assert "total   Linear" in capsys.readouterr().err


def test_monitors_in_a_run(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    callbacks = '[{name = "lr_monitor"}, {name = "grad_norm", per_layer = true}, {name = "throughput"}, '
    callbacks += '{name = "model_summary", print_table = false}]'
    outcome = runner_tester.run(
        DIGITS,
        datasets_plugin,
        models_plugin,
        callbacks_plugin,
        max_steps=4,
        overrides=("run.log_every=2", f"callbacks={callbacks}"),
    )
    train = [r for r in outcome.records if r["stage"] == "train"]
    assert [r["step"] for r in train] == [2, 4]
    for record in train:
        assert record["lr_pg0"] > 0 and record["grad_norm"] > 0 and record["samples_per_sec"] > 0
        assert set(record) >= {"grad_norm.0", "grad_norm.2", "step_time", "data_wait"}
        assert 0 <= record["data_wait"] <= 1
    # lr_pg0 is the rate the logged step used; the core's lr is the next step's (cosine)
    assert train[0]["lr_pg0"] > train[0]["lr"]
    summary = json.loads((outcome.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["extras"]["model_summary"]["total"] == 19210
