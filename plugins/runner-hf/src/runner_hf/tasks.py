"""Tasks on named-field batches (``input_ids``, ``attention_mask``, ``labels``): ``text_classification``
and ``causal_lm``. Extra fields reach the model when its ``forward`` declares them
(:func:`runner.forward_kwargs`)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from runner import StepInfo, StepOutput, Task, batch_fields, forward_kwargs


def _logits(output: Any) -> torch.Tensor:
    logits = getattr(output, "logits", output)
    return logits  # type: ignore[no-any-return]


class TextClassification(Task):
    """Cross-entropy on the model's logits; accuracy."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = label_smoothing

    def _step(self, model: nn.Module, batch: Any, smoothing: float) -> StepOutput:
        inputs, targets, extras = batch_fields(batch)
        logits = _logits(model(inputs, **forward_kwargs(model, extras)))
        loss = F.cross_entropy(logits, targets, label_smoothing=smoothing)
        accuracy = (logits.detach().argmax(-1) == targets).float().mean()
        return StepOutput(loss=loss, metrics={"accuracy": accuracy}, count=int(targets.shape[0]))

    def train_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Loss (with label smoothing) and accuracy."""
        return self._step(model, batch, self.label_smoothing)

    def val_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Plain cross-entropy and accuracy."""
        return self._step(model, batch, 0.0)


class CausalLM(Task):
    """Next-token cross-entropy (labels -100 are ignored); perplexity in validation.

    The loss is averaged over the batch's predicted tokens; ``count`` is that token count,
    so epoch averages weigh every token alike.
    """

    def _step(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, int]:
        inputs, targets, extras = batch_fields(batch)
        logits = _logits(model(inputs, **forward_kwargs(model, extras)))
        shifted = targets[:, 1:].reshape(-1)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), shifted, ignore_index=-100)
        return loss, int((shifted != -100).sum())

    def train_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Token-averaged loss."""
        loss, tokens = self._step(model, batch)
        return StepOutput(loss=loss, count=max(tokens, 1))

    def val_step(self, model: nn.Module, batch: Any, step: StepInfo) -> StepOutput:
        """Loss and perplexity (of the batch; the epoch's is exp of the averaged loss)."""
        loss, tokens = self._step(model, batch)
        return StepOutput(
            loss=loss, metrics={"perplexity": torch.tensor(math.e) ** loss.detach()}, count=max(tokens, 1)
        )
