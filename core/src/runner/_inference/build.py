"""Rebuild a trained run's model and task, with its weights, in eval mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from runner._contract.context import BuildContext
from runner._contract.errors import PluginError, RunnerError
from runner._contract.protocols import protocol_problems
from runner._inference.data import Meta
from runner._inference.weights import Weights, load_into, resolve_weights

if TYPE_CHECKING:
    from runner._inference.rundir import TrainedRun


def build_context(trained: TrainedRun, device: torch.device, rank: int = 0, world_size: int = 1) -> BuildContext:
    recipe = trained.recipe
    return BuildContext(
        recipe=recipe,
        seed=recipe.run.seed,
        run_dir=trained.run_dir,
        device=device,
        rank=rank,
        world_size=world_size,
        train_dataset=Meta(trained.meta),
    )


def build_model(trained: TrainedRun, ctx: BuildContext, weights: Weights) -> torch.nn.Module:
    """The recipe's model with ``weights``, on ``ctx.device``, in eval mode. Building it
    draws random initial weights: the caller's RNG state is left as it was."""
    recipe = trained.recipe
    component = trained.plugins.registry.get("model", recipe.model.name)
    with torch.random.fork_rng(devices=[]):
        model = component.build(recipe.model.params, ctx=ctx)
    if not isinstance(model, torch.nn.Module):
        raise PluginError(f"model {recipe.model.name!r} (plugin {component.plugin}) did not build a torch.nn.Module")
    load_into(model, weights)
    return model.to(ctx.device).eval()


def build_task(trained: TrainedRun, ctx: BuildContext) -> Any:
    """The recipe's task object."""
    recipe = trained.recipe
    component = trained.plugins.registry.get("task", recipe.task.name)
    task = component.build(recipe.task.params, ctx=ctx)
    for problem in protocol_problems("task", task):
        raise PluginError(f"task {recipe.task.name!r} (plugin {component.plugin}) {problem}")
    return task


def model_and_task(
    trained: TrainedRun, device: torch.device, which: str | None, rank: int = 0, world_size: int = 1
) -> tuple[torch.nn.Module, Any, Weights]:
    """The model with the weights ``which`` names, the task, and the weights used."""
    ctx = build_context(trained, device, rank, world_size)
    weights = resolve_weights(trained, which)
    return build_model(trained, ctx, weights), build_task(trained, ctx), weights


def resolve_device(requested: str) -> torch.device:
    """``auto`` (CUDA when available), ``cpu``, ``cuda[:N]``, ``mps``, as ``[run] device`` reads."""
    from runner._builtin.single import SingleDevice

    try:
        return SingleDevice().device(requested)
    except RuntimeError as exc:  # torch refuses the string
        raise RunnerError(f"device {requested!r}: {exc}") from None
