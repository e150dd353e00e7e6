"""The ``fsdp`` backend, declared once (torch-free, read at validation).

The launch keys (``nproc_per_node``, ``nnodes``, ``rdzv_endpoint``, ``timeout_s``...) are
runner-ddp's :class:`runner_ddp.params.LaunchParams`: the fsdp backend is launched and
joined exactly like ddp. The keys below say how the model is sharded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runner import at_least, check, component, param
from runner_ddp.params import LaunchParams

if TYPE_CHECKING:
    from runner_fsdp.backend import FSDP

Dtype = Literal["float32", "bfloat16", "float16"]


@component
class FSDPParams(LaunchParams):
    """Fully sharded data parallel (FSDP2, torch's fully_shard): parameters, gradients and optimizer state sharded.

    Each process holds 1/N of every parameter, its gradient and its optimizer state; a
    unit's full parameters are gathered just before its forward (and backward) and freed
    after. Launched, joined and watched like the ``ddp`` backend (same launch keys).
    """

    wrap: list[str] = param(
        [],
        doc="Class names of the submodules sharded as units of their own (e.g. ['TransformerBlock']); "
        "the whole model is always the outermost unit.",
    )
    min_params: int = param(
        0,
        doc="Also make a unit of every submodule holding at least this many parameters that no inner unit "
        "holds (a size policy); 0: off.",
        check=at_least(0),
    )
    param_dtype: Dtype | None = param(
        None, doc="Mixed precision: the dtype parameters are gathered and computed in; unset: their own dtype."
    )
    reduce_dtype: Dtype | None = param(
        None, doc="The dtype gradients are reduced in; unset: param_dtype (or the parameters' own)."
    )
    cpu_offload: bool = param(
        False,
        doc="Keep the sharded parameters, gradients and optimizer state in CPU memory; the optimizer steps "
        "on the CPU (slower; for models whose shards do not fit the GPU).",
    )
    activation_checkpointing: bool = param(
        False, doc="Recompute each unit's activations in the backward pass instead of keeping them."
    )
    reshard_after_forward: bool = param(
        True,
        doc="Free a unit's gathered parameters after its forward and gather them again for the backward "
        "(less memory, one more all-gather per unit); the outermost unit keeps them.",
    )

    @check("activation_checkpointing", "wrap", "min_params")
    def _units_to_recompute(self) -> str | None:
        if self.activation_checkpointing and not self.wrap and not self.min_params:
            return "activation_checkpointing recomputes units: name them with wrap (class names) or min_params"
        return None

    def build(self) -> FSDP:
        from runner_fsdp.backend import FSDP

        return FSDP(self)
