"""The classification and regression tasks on known batches (an identity model passes logits through)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from runner import Stage, StepInfo
from runner_models.tasks import ClassificationTask, RegressionTask, accuracy, unpack

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


def test_batches_must_be_pairs() -> None:
    with pytest.raises(ValueError, match=r"\(inputs, targets\).*3 items"):
        unpack((LOGITS, LABELS, LABELS))
    with pytest.raises(ValueError, match="dict"):
        unpack({"inputs": LOGITS, "targets": LABELS})
    inputs, targets = unpack([LOGITS, LABELS])
    assert inputs is LOGITS and targets is LABELS
