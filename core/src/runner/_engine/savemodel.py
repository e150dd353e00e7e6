"""Write the trained model into the run directory when training ends (see
:mod:`runner._engine.modelfiles` for the files and their format)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from runner._contract.errors import PluginError, RunnerError
from runner._engine import provenance
from runner._engine.modelfiles import (
    FINAL,
    FORMAT,
    FORMAT_VERSION,
    MODEL_JSON,
    jsonable,
    replace_durably,
    sha256_of,
    weights_file,
    write_json,
)

if TYPE_CHECKING:
    from runner._contract.context import RunContext
    from runner._plugins.hooks import RunHooks


def unwrap(model: Any) -> Any:
    """The model inside a backend's wrapper (``.module`` of DistributedDataParallel)."""
    return getattr(model, "module", model)


def gathered(state: Mapping[str, Any], primary: bool) -> Mapping[str, Any]:
    """``state`` with sharded entries (DTensors, e.g. the fsdp backend's parameters) gathered
    into full CPU tensors on the primary. Collective when there are any: every rank calls it,
    and the entries are gathered one at a time, so no device holds the whole model at once."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return state
    from torch.distributed.tensor import DTensor

    if not any(isinstance(value, DTensor) for value in state.values()):
        return state
    full: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, DTensor):
            value = value.full_tensor()  # collective
            if not primary:
                continue
            value = value.to("cpu", copy=True)
        full[key] = value
    return full


def cpu_tensors(state: Mapping[str, Any], what: str) -> dict[str, torch.Tensor]:
    """Own CPU copies of a state dict's tensors (safetensors refuses shared storage)."""
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise RunnerError(
                f"{what}: entry {key!r} is a {type(value).__name__}, not a tensor; a weights file holds tensors only "
                "(set [run] save_model = false to skip saving the model)"
            )
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
    return tensors


def write_weights(path: Path, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Write a safetensors file atomically; its size and sha256."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        replace_durably(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"file": path.name, "size": path.stat().st_size, "sha256": sha256_of(path)}


def _check_keys(name: str, who: str, state: Mapping[str, Any], expected: set[str]) -> None:
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if not missing and not unexpected:
        return
    parts = [f"missing {', '.join(missing[:3])}"] if missing else []
    parts += [f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []
    raise PluginError(
        f"{who}: hook get_model_weights offered weights {name!r} whose keys differ from the model's "
        f"state_dict() ({'; '.join(parts)}); offer a state dict of the same model"
    )


def save_model(run: RunContext, hooks: RunHooks, *, meta: Mapping[str, Any], local_plugins: tuple[str, ...]) -> None:
    """Write ``model.safetensors``, any offered ``model.<name>.safetensors`` and
    ``model.json`` (last). Every process asks the ``get_model_weights`` hook (an
    implementation may be collective) and gathers a sharded model's weights; the primary
    writes."""
    offered = hooks.get_model_weights(run)
    state = gathered(unwrap(run.model).state_dict(), run.is_primary)
    if not run.is_primary:
        return
    final = cpu_tensors(state, "the model's state_dict()")
    keys = set(final)
    weights: dict[str, dict[str, Any]] = {}
    for name, (who, state) in offered.items():
        _check_keys(name, who, state, keys)
        path = run.run_dir / weights_file(name)
        weights[name] = {**write_weights(path, cpu_tensors(state, f"weights {name!r} from {who}")), "from": who}
    weights = {FINAL: write_weights(run.run_dir / weights_file(FINAL), final), **weights}
    recipe = run.recipe
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "weights": weights,
        "model": jsonable(recipe.resolved.get("model", {"name": recipe.model.name})),
        "task": jsonable(recipe.resolved.get("task", {"name": recipe.task.name})),
        "meta": jsonable(dict(meta)),
        "recipe": "recipe.toml",
        "trained": {
            "global_step": run.global_step,
            "epoch": run.epoch,
            "interrupted": run.interrupted,
            "stop_reason": run.stop_reason,
            "world_size": run.backend.world_size,
            "device": str(run.device),
            "precision": recipe.run.precision,
        },
        "plugins": provenance.plugin_rows(run.plugins),
        "local_plugins": _reload_specs(run, local_plugins),
        "versions": provenance.versions(),
    }
    previous = _previous_files(run.run_dir)
    write_json(run.run_dir / MODEL_JSON, description)
    current = {entry["file"] for entry in weights.values()}
    for stale in previous - current:  # an earlier attempt's alternative weights no model.json lists
        (run.run_dir / stale).unlink(missing_ok=True)


def _reload_specs(run: RunContext, local_plugins: tuple[str, ...]) -> list[str]:
    """The ``-p`` specs that load the run's plugins again: local plugins (absolute paths)
    and the ``no:NAME`` that disabled installed ones."""
    specs = [spec for info in run.plugins if (spec := provenance.local_spec(info)) is not None]
    return [*dict.fromkeys(specs), *(spec for spec in local_plugins if spec.startswith("no:"))]


def _previous_files(run_dir: Path) -> set[str]:
    import json

    try:
        data = json.loads((run_dir / MODEL_JSON).read_text(encoding="utf-8"))
        listed = {entry.get("file") for entry in data.get("weights", {}).values()}
    except (OSError, ValueError, AttributeError):
        return set()
    return {name for name in listed if isinstance(name, str) and name.startswith("model.") and "/" not in name}
