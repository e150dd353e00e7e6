"""ema: the average's arithmetic, evaluation with it (and training without it), its state."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from cb_helpers import DIGITS, FakeRun

from runner import RunnerError
from runner_callbacks import plugin as callbacks_plugin
from runner_callbacks.ema import EMA


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def test_the_average_follows_the_weights_with_warmup() -> None:
    net = model()
    run = FakeRun(net)
    ema = EMA(decay=0.9, warmup=True)
    ema.on_begin_train(run)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.on_end_train_step(run, 1)  # decay min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.shadow["0.weight"], start * 0.1 + (start + 1) * 0.9)
    ema.on_end_train_step(run, 2)  # decay min(0.9, 2/11)
    d = 2 / 11
    expected = (start * 0.1 + (start + 1) * 0.9) * d + (start + 1) * (1 - d)
    assert torch.allclose(ema.shadow["0.weight"], expected)
    assert ema.shadow["1.num_batches_tracked"].dtype == torch.int64  # integer buffers copied
    no_warmup = EMA(decay=0.9, warmup=False)
    assert no_warmup.current_decay() == 0.9


def test_every_n_steps() -> None:
    net = model()
    run = FakeRun(net)
    ema = EMA(decay=0.5, every_n_steps=3)
    ema.on_begin_train(run)
    for step in range(1, 7):
        ema.on_end_train_step(run, step)
    assert ema.updates == 2


def test_evaluation_swaps_the_average_in_and_the_weights_back_exactly() -> None:
    net = model()
    run = FakeRun(net)
    ema = EMA(decay=0.5)
    ema.on_begin_train(run)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    ema.on_end_train_step(run, 1)
    training = {k: v.clone() for k, v in net.state_dict().items()}
    ema.on_begin_val_epoch(run)
    assert torch.equal(net[0].weight, ema.shadow["0.weight"])
    assert not torch.equal(net[0].weight, training["0.weight"])
    ema.on_end_val_epoch(run)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in training.items())
    ema.on_begin_test_epoch(run)
    ema.teardown(run)  # an evaluation that raised still leaves the training weights
    assert all(torch.equal(net.state_dict()[k], v) for k, v in training.items())
    off = EMA(evaluate=False)
    off.on_begin_train(run)
    off.on_begin_val_epoch(run)
    assert off._backup is None


def test_state_round_trip_and_a_model_that_changed() -> None:
    net = model()
    run = FakeRun(net)
    ema = EMA(decay=0.5)
    ema.on_begin_train(run)
    with torch.no_grad():
        net[0].weight.add_(2.0)
    ema.on_end_train_step(run, 1)
    state = ema.get_state()
    assert state is not None and state["updates"] == 1
    resumed = EMA(decay=0.5)
    resumed.update_state(run, state)
    resumed.on_begin_train(run)  # keeps the restored average
    assert all(torch.equal(resumed.shadow[k], v) for k, v in ema.shadow.items())
    assert resumed.updates == 1
    other = FakeRun(torch.nn.Linear(3, 4))
    with pytest.raises(RunnerError, match=r"lack 1 of the model's entries \(bias"):
        EMA().update_state(other, {"updates": 1, "weights": {"weight": torch.zeros(4, 3)}})


@pytest.mark.slow  # takes seconds
def test_validation_uses_the_average_and_training_is_unchanged(runner_tester: Any) -> None:
    datasets_plugin = pytest.importorskip("runner_datasets.plugin")
    models_plugin = pytest.importorskip("runner_models.plugin")
    plugins = (datasets_plugin, models_plugin, callbacks_plugin)
    common = ("run.val_every=3", "run.log_every=1")
    plain = runner_tester.run(DIGITS, *plugins, max_steps=6, overrides=common)
    averaged = runner_tester.run(
        DIGITS, *plugins, max_steps=6, overrides=(*common, 'callbacks=[{name = "ema", decay = 0.9}]')
    )
    kept = runner_tester.run(
        DIGITS,
        *plugins,
        max_steps=6,
        overrides=(*common, 'callbacks=[{name = "ema", decay = 0.9, evaluate = false}]'),
    )

    def stage(outcome: Any, name: str) -> list[dict[str, Any]]:
        return [r for r in outcome.records if r["stage"] == name]

    # training never sees the average: the train records are identical
    assert stage(averaged, "train") == stage(plain, "train") == stage(kept, "train")
    assert stage(kept, "val") == stage(plain, "val")
    assert [r["loss"] for r in stage(averaged, "val")] != [r["loss"] for r in stage(plain, "val")]
    assert stage(averaged, "test")[0]["loss"] != stage(plain, "test")[0]["loss"]
