"""A snapshot of a captured run state in host memory, for asynchronous saves.

``run.capture_state()`` returns references to live tensors (parameters, optimizer
moments) and live containers (``last_metrics``): the next optimizer step changes them. A
background write needs its own copy, taken at the step boundary: :class:`Stager` copies
every tensor to host memory and rebuilds every container, and that copy is the only work
the training step waits for.

Tensors are copied into host buffers allocated at the first save and reused by the next
ones (keyed by their place in the state): pinned memory for tensors on a GPU, with one
synchronization at the end. The copy then runs at memory bandwidth, without the page
faults of fresh allocations, and the run holds one copy of its state in host memory
from its first asynchronous save on. A sharded tensor (DTensor) keeps its sharding: its
local shard is copied and wrapped with the same spec, as torch's own asynchronous
checkpointing does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from runner_checkpoint.codec import ATOMIC, is_sharded

Key = tuple[Any, ...]


class Stager:
    """Copies states to host memory, reusing its buffers across saves (pinned for GPU tensors)."""

    def __init__(self) -> None:
        self._buffers: dict[Key, torch.Tensor] = {}
        self._synchronize = False

    def stage(self, state: Any) -> Any:
        """A copy of ``state`` that shares no tensor memory and no container with it."""
        self._synchronize = False
        self._seen: dict[int, torch.Tensor] = {}  # a tensor met twice (tied weights) stays one
        staged = self._copy(state, ())
        if self._synchronize:
            torch.cuda.synchronize()
        return staged

    @property
    def held_bytes(self) -> int:
        """Host memory held for the next saves."""
        return sum(t.numel() * t.element_size() for t in self._buffers.values())

    def _copy(self, node: Any, path: Key) -> Any:
        if type(node) in ATOMIC:  # most nodes (the RNG states' long lists of integers): no call deeper
            return node
        if isinstance(node, torch.Tensor):
            return self._tensor(node, path)
        if type(node) is dict or (not isinstance(node, (list, tuple)) and isinstance(node, Mapping)):
            return {k: self._copy(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            if set(map(type, node)) <= ATOMIC:  # in C: the RNG states' 625 integers cost nothing
                return list(node) if isinstance(node, list) else tuple(node)
            items = [self._copy(v, (*path, i)) for i, v in enumerate(node)]
            return items if isinstance(node, list) else tuple(items)
        if isinstance(node, np.ndarray):
            return node.copy()
        if isinstance(node, (torch.dtype, torch.device)):
            return node
        return copy.deepcopy(node)

    def _tensor(self, tensor: torch.Tensor, path: Key) -> torch.Tensor:
        staged = self._seen.get(id(tensor))
        if staged is None:
            staged = self._seen[id(tensor)] = self._stage_tensor(tensor, path)
        return staged

    def _stage_tensor(self, tensor: torch.Tensor, path: Key) -> torch.Tensor:
        if is_sharded(tensor):
            from torch.distributed.tensor import DTensor

            local = self._local(tensor.to_local().detach(), path)
            # The shard with the same spec (mesh, placements, global shape): torch's own
            # staging for async checkpoints builds it the same way.
            return DTensor(local, tensor._spec, requires_grad=False)  # type: ignore[attr-defined]
        return self._local(tensor.detach(), path)

    def _local(self, tensor: torch.Tensor, path: Key) -> torch.Tensor:
        cuda = tensor.device.type == "cuda"
        buffer = self._buffers.get(path)
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype:
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=cuda)
            self._buffers[path] = buffer
        buffer.copy_(tensor, non_blocking=cuda)
        self._synchronize = self._synchronize or cuda
        return buffer
