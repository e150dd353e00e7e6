"""The classification and regression tasks on known batches (an identity model passes logits through)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from runner import DataError, Stage, StepInfo
from runner_models.tasks import ClassificationTask, RegressionTask, accuracy

LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
LABELS = torch.tensor([0, 0, 1])


def expected_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        total += math.log(sum(math.exp(v) for v in row)) - row[label]
    return total / len(labels)


def info(stage: Stage = Stage.TRAIN, want_metrics: bool = True) -> StepInfo:
    return StepInfo(stage, want_metrics=want_metrics)


class Scale(nn.Module):
    """``x * weight``: an identity model with a parameter, so losses have gradients."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


def test_classification_train_step_on_a_known_batch() -> None:
    out = ClassificationTask().train_step(Scale(), (LOGITS, LABELS), info())
    assert out.loss is not None and out.loss.requires_grad
    assert out.loss.item() == pytest.approx(expected_cross_entropy(LOGITS, LABELS))
    assert out.metrics["accuracy"].item() == pytest.approx(2 / 3)
    assert out.count == 3
    assert torch.equal(out.outputs[0], LOGITS) and not out.outputs[0].requires_grad


def test_classification_skips_metrics_when_not_wanted() -> None:
    out = ClassificationTask().train_step(Scale(), (LOGITS, LABELS), info(want_metrics=False))
    assert out.metrics == {}
    assert out.loss is not None and out.loss.item() == pytest.approx(expected_cross_entropy(LOGITS, LABELS))


def test_classification_val_step_always_reports_accuracy() -> None:
    out = ClassificationTask().val_step(Scale(), [LOGITS, LABELS], info(Stage.VAL, want_metrics=False))
    assert out.metrics["accuracy"].item() == pytest.approx(2 / 3)
    assert out.count == 3


def test_label_smoothing_changes_training_loss_only() -> None:
    task = ClassificationTask(label_smoothing=0.2)
    smoothed = task.train_step(Scale(), (LOGITS, LABELS), info()).loss
    expected = nn.functional.cross_entropy(LOGITS, LABELS, label_smoothing=0.2).item()
    assert smoothed is not None and smoothed.item() == pytest.approx(expected)
    assert expected != pytest.approx(expected_cross_entropy(LOGITS, LABELS))
    val = task.val_step(Scale(), (LOGITS, LABELS), info(Stage.VAL)).loss
    assert val is not None and val.item() == pytest.approx(expected_cross_entropy(LOGITS, LABELS))


def test_label_smoothing_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationTask(label_smoothing=1.5)


def test_test_step_is_val_step() -> None:
    out = ClassificationTask().forward(Stage.TEST, Scale(), (LOGITS, LABELS), info(Stage.TEST))
    assert out.metrics["accuracy"].item() == pytest.approx(2 / 3)


def test_accuracy_with_probability_targets() -> None:
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    assert accuracy(LOGITS, probabilities).item() == pytest.approx(2 / 3)


PREDICTIONS = torch.tensor([[1.0], [2.0], [4.0], [0.0]])
TARGETS = torch.tensor([1.5, 2.0, 1.0, 0.0])  # errors 0.5, 0, -3, 0


def test_regression_train_step_on_a_known_batch() -> None:
    out = RegressionTask().train_step(Scale(), (PREDICTIONS, TARGETS), info())
    assert out.loss is not None and out.loss.requires_grad
    assert out.loss.item() == pytest.approx((0.25 + 9) / 4)
    assert out.metrics["mae"].item() == pytest.approx(3.5 / 4)
    assert out.count == 4


def test_regression_skips_metrics_when_not_wanted_but_val_reports_them() -> None:
    task = RegressionTask()
    assert task.train_step(Scale(), (PREDICTIONS, TARGETS), info(want_metrics=False)).metrics == {}
    out = task.val_step(Scale(), (PREDICTIONS, TARGETS.unsqueeze(1)), info(Stage.VAL, want_metrics=False))
    assert out.loss is not None and out.loss.item() == pytest.approx((0.25 + 9) / 4)
    assert out.metrics["mae"].item() == pytest.approx(3.5 / 4)


def test_regression_casts_targets_to_the_prediction_dtype() -> None:
    out = RegressionTask().val_step(Scale(), (PREDICTIONS, TARGETS.double()), info(Stage.VAL))
    assert out.loss is not None and out.loss.dtype == torch.float32


def test_regression_rejects_mismatched_shapes_instead_of_broadcasting() -> None:
    with pytest.raises(ValueError, match="out_features"):
        RegressionTask().train_step(Scale(), (torch.zeros(4, 3), TARGETS), info())


class Masked(nn.Module):
    """Zeroes the logits of rows whose sequence is empty: shows which extras it received."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, Any] = {}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        self.seen = {"lengths": lengths}
        return x if lengths is None else x * (lengths > 0).unsqueeze(-1)


@pytest.mark.parametrize(
    "batch",
    [
        (LOGITS, LABELS),
        [LOGITS, LABELS],
        {"inputs": LOGITS, "targets": LABELS},
        {"input_ids": LOGITS, "labels": LABELS, "attention_mask": torch.ones(3, 2)},
    ],
    ids=["tuple", "list", "fields", "hugging-face-fields"],
)
@pytest.mark.parametrize("stage", [Stage.TRAIN, Stage.VAL])
def test_classification_reads_tuples_and_named_fields(batch: Any, stage: Stage) -> None:
    out = ClassificationTask().forward(stage, Scale(), batch, info(stage))
    assert out.loss is not None and out.loss.item() == pytest.approx(expected_cross_entropy(LOGITS, LABELS))
    assert out.metrics["accuracy"].item() == pytest.approx(2 / 3) and out.count == 3


@pytest.mark.parametrize("stage", [Stage.TRAIN, Stage.VAL])
def test_regression_reads_named_fields(stage: Stage) -> None:
    out = RegressionTask().forward(
        stage, Scale(), {"inputs": PREDICTIONS, "targets": TARGETS, "id": [1] * 4}, info(stage)
    )
    assert out.loss is not None and out.loss.item() == pytest.approx((0.25 + 9) / 4)


def test_tasks_pass_the_fields_a_model_declares() -> None:
    model = Masked()
    lengths = torch.tensor([2, 0, 1])
    batch = {"inputs": LOGITS, "targets": LABELS, "lengths": lengths, "attention_mask": torch.ones(3, 2)}
    out = ClassificationTask().val_step(model, batch, info(Stage.VAL))
    assert model.seen["lengths"] is lengths  # attention_mask, undeclared, would be a TypeError
    masked = LOGITS * torch.tensor([[1.0], [0.0], [1.0]])
    assert out.loss is not None and out.loss.item() == pytest.approx(expected_cross_entropy(masked, LABELS))
    RegressionTask().train_step(model, {"inputs": PREDICTIONS, "targets": TARGETS, "lengths": torch.ones(4)}, info())
    assert model.seen["lengths"].tolist() == [1.0] * 4
    ClassificationTask().train_step(model, (LOGITS, LABELS), info())
    assert model.seen["lengths"] is None


def test_batches_must_follow_the_convention() -> None:
    with pytest.raises(DataError, match=r"\(inputs, targets\).*found a tuple of 3 items"):
        ClassificationTask().train_step(Scale(), (LOGITS, LABELS, LABELS), info())
    with pytest.raises(DataError, match="found a dict with keys 'x', 'y'"):
        RegressionTask().val_step(Scale(), {"x": LOGITS, "y": LABELS}, info(Stage.VAL))


# -- predictions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch",
    [LOGITS, (LOGITS,), (LOGITS, LABELS), {"inputs": LOGITS}, {"inputs": LOGITS, "targets": LABELS}],
    ids=["tensor", "1-tuple", "pair", "fields", "fields with targets"],
)
def test_classification_predicts_class_and_probabilities_with_or_without_targets(batch: Any) -> None:
    out = ClassificationTask().predict_step(Scale(), batch, info(Stage.TEST))
    assert set(out) == {"class", "probabilities"}
    assert out["class"].tolist() == [0, 1, 1]
    expected = [[math.exp(v) / sum(math.exp(w) for w in row) for v in row] for row in LOGITS.tolist()]
    assert torch.allclose(out["probabilities"], torch.tensor(expected))


def test_regression_predicts_one_number_per_sample_for_one_output() -> None:
    single = torch.tensor([[0.5], [1.5]])
    out = RegressionTask().predict_step(Scale(), (single,), info(Stage.TEST))
    assert set(out) == {"prediction"} and out["prediction"].tolist() == [0.5, 1.5]
    wide = torch.tensor([[0.5, 1.0], [1.5, 2.0]])
    assert RegressionTask().predict_step(Scale(), wide, info(Stage.TEST))["prediction"].tolist() == wide.tolist()


def test_a_batch_without_inputs_cannot_be_predicted() -> None:
    with pytest.raises(DataError, match="expected inputs, \\(inputs,\\), \\(inputs, targets\\) or named fields"):
        ClassificationTask().predict_step(Scale(), {"targets": LABELS}, info(Stage.TEST))
