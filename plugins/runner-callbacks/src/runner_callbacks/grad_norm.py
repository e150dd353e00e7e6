"""``grad_norm``: the norm of the gradients in the train records.

Measured after the logged step's backward pass (``on_end_backward`` of its last
micro-batch, so accumulated gradients are complete), before clipping and the optimizer
step. With fp16 the gradients are still multiplied by the loss scale: the norm is divided
by it, giving the norm of the true gradients (what clipping sees after ``unscale_``). With
several processes the gradients are already averaged across ranks, so every rank measures
the same. Adds ``grad_norm`` and with ``per_layer = true`` ``grad_norm.<module>`` for each
module that holds parameters with gradients.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from runner import RunContext
from runner_callbacks._model import unwrapped
from runner_callbacks._steps import logging_step


class GradNorm:
    """Adds the global (and per-module) gradient norm to every train record."""

    def __init__(self, norm_type: float = 2.0, per_layer: bool = False) -> None:
        self.norm_type = float(norm_type)
        self.per_layer = per_layer

    @torch.no_grad()
    def norms(self, model: torch.nn.Module, scale: float = 1.0) -> dict[str, float]:
        grads: dict[str, list[torch.Tensor]] = defaultdict(list)
        for name, parameter in model.named_parameters():
            if parameter.grad is not None:
                grads[name.rpartition(".")[0] or name].append(parameter.grad.detach())
        if not grads:
            return {}
        p = self.norm_type
        layer_norms = {
            layer: torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, p) for g in tensors]), p)
            for layer, tensors in grads.items()
        }
        total = torch.linalg.vector_norm(torch.stack(list(layer_norms.values())), p)
        found = {"grad_norm": float(total) / scale}
        if self.per_layer:
            found.update({f"grad_norm.{layer}": float(norm) / scale for layer, norm in layer_norms.items()})
        return found

    def on_end_backward(self, run: RunContext, global_step: int) -> None:
        if not logging_step(run, global_step):
            return
        scale = float(run.scaler.get_scale()) if run.scaler is not None else 1.0
        run.log_metrics(self.norms(unwrapped(run.model), scale))
