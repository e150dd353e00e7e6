"""A snapshot of a captured run state in host memory, for asynchronous saves.

``run.capture_state()`` returns references to live tensors (parameters, optimizer
moments) and live containers (``last_metrics``): the next optimizer step changes them. A
background write needs its own copy, taken at the step boundary: :class:`Stager` copies
every tensor to host memory and rebuilds every container, and that copy is the only work
the training step waits for.

Tensors on a GPU are copied into pinned host buffers (allocated at the first save and
reused by the next ones, keyed by their place in the state), with one synchronization
at the end; CPU tensors are cloned. A sharded tensor (DTensor) keeps its sharding: its
local shard is copied and wrapped with the same spec, as torch's own asynchronous
checkpointing does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from runner_checkpoint.codec import is_sharded

Key = tuple[Any, ...]


class Stager:
    """Copies states to host memory, reusing pinned buffers for GPU tensors across saves."""

    def __init__(self) -> None:
        self._pinned: dict[Key, torch.Tensor] = {}
        self._synchronize = False

    def stage(self, state: Any) -> Any:
        """A copy of ``state`` that shares no tensor memory and no container with it."""
        self._synchronize = False
        staged = self._copy(state, ())
        if self._synchronize:
            torch.cuda.synchronize()
        return staged

    @property
    def pinned_bytes(self) -> int:
        """Host memory held for the next saves."""
        return sum(t.numel() * t.element_size() for t in self._pinned.values())

    def _copy(self, node: Any, path: Key) -> Any:
        if isinstance(node, torch.Tensor):
            return self._tensor(node, path)
        if isinstance(node, Mapping):
            return {k: self._copy(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [self._copy(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, tuple):
            return tuple(self._copy(v, (*path, i)) for i, v in enumerate(node))
        if isinstance(node, np.ndarray):
            return node.copy()
        if node is None or isinstance(node, (bool, int, float, str, bytes, torch.dtype, torch.device)):
            return node
        return copy.deepcopy(node)

    def _tensor(self, tensor: torch.Tensor, path: Key) -> torch.Tensor:
        if is_sharded(tensor):
            from torch.distributed.tensor import DTensor

            local = self._local(tensor.to_local().detach(), path)
            # The shard with the same spec (mesh, placements, global shape): torch's own
            # staging for async checkpoints builds it the same way.
            return DTensor(local, tensor._spec, requires_grad=False)  # type: ignore[attr-defined]
        return self._local(tensor.detach(), path)

    def _local(self, tensor: torch.Tensor, path: Key) -> torch.Tensor:
        if tensor.device.type != "cuda":
            return tensor.clone(memory_format=torch.contiguous_format)
        buffer = self._pinned.get(path)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._pinned[path] = buffer
        buffer.copy_(tensor, non_blocking=True)
        self._synchronize = True
        return buffer
