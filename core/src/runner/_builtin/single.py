"""The single-device backend: the run happens in this process."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from runner._contract.backend import Job
from runner._contract.errors import RunnerError

T = TypeVar("T")


class SingleDevice:
    """One process, one device. ``device = "auto"`` picks CUDA when available."""

    rank = 0
    world_size = 1

    @property
    def is_primary(self) -> bool:
        return True

    def launch(self, worker: Callable[[Job, SingleDevice], T], job: Job) -> T:
        return worker(job, self)

    def device(self, requested: str) -> torch.device:
        if requested == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RunnerError(f"[run] device = {requested!r} but CUDA is not available; use 'auto' or 'cpu'")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise RunnerError(f"[run] device = {requested!r} but only {torch.cuda.device_count()} GPUs are visible")
        return device

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def barrier(self) -> None:
        return None
