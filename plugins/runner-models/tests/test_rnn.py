"""The rnn model: padding never changes a sequence's outputs; tokens or features; sizes from meta."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from runner import Stage, StepInfo
from runner_models.rnn import RNNClassifier, build
from runner_models.tasks import ClassificationTask


def ctx(**meta: Any) -> Any:
    return SimpleNamespace(meta=meta)


def padded(sequences: list[torch.Tensor], total: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences padded with 0 to ``total`` steps, and their bool mask (what the pad collate gives)."""
    batch = torch.zeros(len(sequences), total, *sequences[0].shape[1:], dtype=sequences[0].dtype)
    mask = torch.zeros(len(sequences), total, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        span = slice(0, len(seq)) if side == "right" else slice(total - len(seq), total)
        batch[row, span] = seq
        mask[row, span] = True
    return batch, mask


MODELS = {
    "gru": {},
    "lstm": {"cell": "lstm"},
    "bidirectional-2-layers": {"bidirectional": True, "num_layers": 2},
}


@pytest.mark.slow  # takes seconds
@pytest.mark.parametrize("options", MODELS.values(), ids=MODELS.keys())
def test_padding_does_not_change_the_outputs(options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build(vocab_size=12, num_classes=3, embed_dim=8, hidden_size=16, **options).eval()
    generator = torch.Generator().manual_seed(1)
    sequences = [torch.randint(1, 12, (n,), generator=generator) for n in (5, 2, 9, 1)]
    alone = torch.cat([model(seq.unsqueeze(0)) for seq in sequences])
    x, mask = padded(sequences, 9)
    lengths = mask.sum(1)
    torch.testing.assert_close(model(x, lengths=lengths), alone)
    more, more_mask = padded(sequences, 20)  # extra padding changes nothing
    torch.testing.assert_close(model(more, lengths=more_mask.sum(1)), alone)
    torch.testing.assert_close(model(more, attention_mask=more_mask), alone)
    left, left_mask = padded(sequences, 13, side="left")  # the mask finds real positions anywhere
    torch.testing.assert_close(model(left, attention_mask=left_mask.long()), alone)
    # Unpacked, the final state reads the padding: the outputs differ (what packing prevents).
    assert not torch.allclose(model(more), alone, atol=1e-3)


def test_float_features_through_a_projection() -> None:
    torch.manual_seed(0)
    model = build(in_features=3, out_features=1).eval()
    assert isinstance(model.embed, nn.Linear)
    sequences = [torch.randn(n, 3) for n in (4, 2)]
    x, mask = padded(sequences, 6)
    alone = torch.cat([model(seq.unsqueeze(0)) for seq in sequences])
    torch.testing.assert_close(model(x, lengths=mask.sum(1)), alone)
    scalar_steps = build(in_features=1, num_classes=2)
    assert scalar_steps(torch.randn(2, 5)).shape == (2, 2)  # (N, T) floats are one feature per step


def test_sizes_come_from_meta() -> None:
    tokens = build(ctx=ctx(vocab_size=30, num_classes=4, in_features=99))
    assert isinstance(tokens.embed, nn.Embedding) and tokens.embed.num_embeddings == 30
    assert tokens.head.out_features == 4
    features = build(ctx=ctx(in_features=5, out_features=2), hidden_size=8, bidirectional=True)
    assert isinstance(features.embed, nn.Linear) and features.embed.in_features == 5
    assert features.head.in_features == 16 and features.head.out_features == 2


def test_missing_or_conflicting_sizes_are_named() -> None:
    with pytest.raises(
        ValueError, match=r"rnn: set vocab_size \(token inputs\) or in_features .*meta keys: num_classes"
    ):
        build(ctx=ctx(num_classes=2))
    with pytest.raises(ValueError, match="not both"):
        build(vocab_size=5, in_features=3, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        build(vocab_size=5)


def test_wrong_inputs_are_explained() -> None:
    with pytest.raises(ValueError, match=r"expected \(N, T\) integer tokens, found torch.float32"):
        build(vocab_size=5, num_classes=2)(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expected \(N, T, 3\) features, found shape \(2, 4, 2\)"):
        build(in_features=3, num_classes=2)(torch.zeros(2, 4, 2))


def test_the_classification_task_passes_lengths_and_the_mask() -> None:
    """A named-field batch reaches the model with its lengths: the loss is that of the unpadded sequences."""
    torch.manual_seed(0)
    model = RNNClassifier(vocab_size=6, in_features=None, out_features=2, hidden_size=8, embed_dim=4).eval()
    sequences = [torch.tensor([1, 2, 3]), torch.tensor([4])]
    targets = torch.tensor([0, 1])
    x, mask = padded(sequences, 7)
    expected = nn.functional.cross_entropy(torch.cat([model(s.unsqueeze(0)) for s in sequences]), targets)
    batch = {"inputs": x, "targets": targets, "lengths": mask.sum(1), "attention_mask": mask}
    out = ClassificationTask().val_step(model, batch, StepInfo(Stage.VAL))
    assert out.loss is not None
    torch.testing.assert_close(out.loss, expected)
