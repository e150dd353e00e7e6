"""The ``fsdp`` backend: runner-ddp's launcher and ranks, with the model sharded by FSDP2.

:class:`FSDP` subclasses :class:`runner_ddp.backend.DDP`: launching (torch's elastic
agent), joining torchrun/SLURM processes, the process group, failure attribution, the
train loader's global sample position and the unpadded evaluation shards are runner-ddp's.
Only :meth:`FSDP.wrap_model` differs: it shards the model with ``fully_shard``
(:mod:`runner_fsdp.sharding`) instead of wrapping it in ``DistributedDataParallel``.

The model's ``state_dict()`` and the optimizer's state then hold ``DTensor`` shards:
runner-checkpoint writes them with torch.distributed.checkpoint (every rank its shards),
and the core gathers them into full tensors for ``model.safetensors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from runner import RunContext, RunnerError, Stage
from runner_ddp.backend import DDP

if TYPE_CHECKING:
    from runner_fsdp.params import FSDPParams


class FSDP(DDP):
    """FSDP2 over torch.distributed; ``rank`` 0 is the primary."""

    params: FSDPParams

    def wrap_model(self, model: torch.nn.Module) -> torch.nn.Module:
        from runner_fsdp.sharding import shard

        device = self._device or torch.device("cpu")
        return shard(model, self.params, device, self.world_size)

    def setup(self, run: RunContext, stage: Stage) -> None:
        """As ddp; and make sure runner-ddp's plugin (which checkpoints the sample position) is loaded."""
        if not any(info.dist == "runner-ddp" for info in run.plugins):
            raise RunnerError(
                "the fsdp backend needs the runner-ddp plugin enabled (it keeps the train loader's sample "
                "position in checkpoints); add ddp where you list plugins (RUNNER_PLUGINS, -p)"
            )
        super().setup(run, stage)
