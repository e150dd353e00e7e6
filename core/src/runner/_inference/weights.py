"""Which weights to use: the run's own files, a safetensors file, or a plugin's (checkpoints).

``--checkpoint`` (``checkpoint=`` in Python) names them:

- nothing or ``final``: ``model.safetensors``, the weights when training ended;
- a name ``model.json`` lists (``ema``): ``model.<name>.safetensors``;
- a path to a ``.safetensors`` file: read as is;
- anything else (``best``, ``last``, a checkpoint directory): asked of the plugins through
  the ``load_model_weights`` hook (runner-checkpoint answers for its checkpoints).

The run's own files are checked against the size and sha256 ``model.json`` recorded.
Nothing is ever unpickled.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from runner._contract.errors import RunnerError
from runner._engine.modelfiles import FINAL, sha256_of

if TYPE_CHECKING:
    from runner._inference.rundir import TrainedRun


@attrs.frozen
class Weights:
    """A state dict and where it came from (for messages)."""

    state: Mapping[str, Any]
    source: str


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors on the CPU (a one-line error when it is not one)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunnerError(f"{path}: cannot read the weights: {' '.join(str(exc).split())}") from None


def _own_file(trained: TrainedRun, name: str, entry: Mapping[str, Any]) -> Weights:
    path = trained.run_dir / str(entry.get("file"))
    if not path.is_file():
        raise RunnerError(f"{path}: missing (model.json lists it as the {name!r} weights)")
    size, digest = entry.get("size"), entry.get("sha256")
    if (isinstance(size, int) and path.stat().st_size != size) or (digest and sha256_of(path) != digest):
        raise RunnerError(
            f"{path}: does not match model.json (size or sha256 differ): the file was changed or damaged since training"
        )
    return Weights(read_safetensors(path), str(path))


def resolve_weights(trained: TrainedRun, which: str | None) -> Weights:
    """The weights ``which`` names (see the module doc)."""
    from runner._plugins.hooks import RunHooks

    which = which or FINAL
    listed = trained.info.get("weights") or {}
    if which in listed:
        return _own_file(trained, which, listed[which])
    if which.endswith(".safetensors") and Path(which).is_file():
        return Weights(read_safetensors(Path(which)), which)
    answer = RunHooks(trained.plugins).load_model_weights(trained.run_dir, which)
    if answer is not None:
        state, who = answer
        return Weights(state, f"checkpoint {which} ({who})")
    if which in ("best", "last"):
        raise RunnerError(
            f"checkpoint {which!r}: no plugin provides checkpoints of {trained.run_dir} "
            "(train with a [checkpoint] table and runner-checkpoint installed)"
        )
    names = ", ".join(dict.fromkeys([FINAL, "best", "last", *listed]))
    raise RunnerError(
        f"checkpoint {which!r}: not weights of {trained.run_dir} (choose one of {names}, a .safetensors file "
        "or a checkpoint directory)"
    )


def load_into(model: torch.nn.Module, weights: Weights) -> None:
    """Load ``weights`` into ``model`` strictly; a one-line error naming the differing keys."""
    state = dict(weights.state)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"] if missing else []
        parts += (
            [f"unexpected {', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''}"] if unexpected else []
        )
        raise RunnerError(f"weights {weights.source} do not fit the model ({'; '.join(parts)})")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # shapes differ: torch lists them
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        detail = lines[0] if lines else " ".join(str(exc).split())
        raise RunnerError(f"weights {weights.source} do not fit the model: {detail}") from None
