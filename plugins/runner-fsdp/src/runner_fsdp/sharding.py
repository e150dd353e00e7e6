"""Shard a model with FSDP2 (``torch.distributed.fsdp.fully_shard``) as ``[backend]`` says.

The units are chosen first (:func:`units`): submodules whose class is named in ``wrap``,
then, with ``min_params``, every submodule holding at least that many parameters that no
inner unit holds; the model itself is always the outermost unit. Activation checkpointing
(the composable ``checkpoint``, which keeps parameter names) goes on each unit, then each
unit is sharded innermost first.

Before sharding, rank 0's parameters and buffers are broadcast to every rank (as
``DistributedDataParallel`` does): the shards then come from one model even if a model's
initialisation differed between processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from runner import RunnerError, did_you_mean

if TYPE_CHECKING:
    from runner_fsdp.params import FSDPParams

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def units(model: torch.nn.Module, wrap: Sequence[str], min_params: int) -> list[tuple[str, torch.nn.Module]]:
    """``(name, module)`` of each submodule to shard as a unit of its own, innermost first."""
    classes = {type(module).__name__ for _, module in model.named_modules()}
    for name in wrap:
        if name not in classes:
            hint = did_you_mean(name, sorted(classes))
            raise RunnerError(
                f"[backend] wrap = {list(wrap)!r}: no submodule of the model is a {name!r}"
                f"{f' ({hint})' if hint else ''}; its classes are {', '.join(sorted(classes))}"
            )
    chosen: list[tuple[str, torch.nn.Module]] = []
    covered: set[int] = set()  # ids of parameters an inner unit holds

    def visit(name: str, module: torch.nn.Module) -> None:
        for child_name, child in module.named_children():
            visit(f"{name}.{child_name}" if name else child_name, child)
        if module is model:
            return
        own = [p for p in module.parameters() if id(p) not in covered]
        named = type(module).__name__ in wrap
        large = min_params > 0 and sum(p.numel() for p in own) >= min_params
        if (named or large) and own:
            chosen.append((name, module))
            covered.update(id(p) for p in own)

    visit("", model)
    return chosen


def broadcast_from_rank0(model: torch.nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers (in place)."""
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def shard(model: torch.nn.Module, params: FSDPParams, device: torch.device, world_size: int) -> torch.nn.Module:
    """``model`` sharded in place over the ``world_size`` processes of the default group."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, OffloadPolicy, fully_shard

    chosen = units(model, params.wrap, params.min_params)
    if world_size > 1:
        broadcast_from_rank0(model)
    if params.activation_checkpointing:
        from torch.distributed._composable import checkpoint

        for _, unit in chosen:
            checkpoint(unit)
    param_dtype = DTYPES[params.param_dtype] if params.param_dtype else None
    reduce_dtype = DTYPES[params.reduce_dtype] if params.reduce_dtype else None
    options: dict[str, Any] = {
        "mesh": init_device_mesh(device.type, (world_size,)),
        "mp_policy": MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=reduce_dtype),
        "offload_policy": CPUOffloadPolicy(pin_memory=device.type == "cuda") if params.cpu_offload else OffloadPolicy(),
    }
    for _, unit in chosen:
        fully_shard(unit, reshard_after_forward=params.reshard_after_forward, **options)
    fully_shard(model, **options)  # the root: torch keeps its parameters gathered for the backward
    return model
