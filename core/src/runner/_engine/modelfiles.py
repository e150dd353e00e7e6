"""The trained model a run leaves in its directory: file names and ``model.json`` (torch-free).

When training ends (``[run] save_model``, the default) the primary process writes:

- ``model.safetensors``: the final weights, the unwrapped model's ``state_dict()``;
- ``model.<name>.safetensors``: alternative weights plugins offer through the
  ``get_model_weights`` hook (``model.ema.safetensors`` for an EMA callback);
- ``model.json``, written last (it is the commit point): which weights files exist with
  their size and sha256, the resolved ``[model]`` and ``[task]`` tables, the training
  data's ``meta`` (sizes the model factory read), the plugins and library versions (with
  the sha256 of local plugin files), and where training stopped.

Each file is written to a temporary name, fsynced and renamed into place, so a reader
never sees half a file. ``runner predict``, ``runner export`` and ``runner.load`` rebuild
the model from ``model.json`` and the run's ``recipe.toml``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from runner._contract.errors import RunnerError

MODEL_FILE = "model.safetensors"
MODEL_JSON = "model.json"
FORMAT = "runner-model"
FORMAT_VERSION = 1
#: The weights ``model.safetensors`` holds, as ``--checkpoint`` names them.
FINAL = "final"


def weights_file(name: str) -> str:
    """``model.safetensors`` for the final weights, ``model.<name>.safetensors`` otherwise."""
    return MODEL_FILE if name == FINAL else f"model.{name}.safetensors"


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """fsync ``tmp``, rename it to ``final``, fsync the directory."""
    with open(tmp, "rb+") as file:
        os.fsync(file.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        replace_durably(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_model_json(run_dir: Path) -> dict[str, Any]:
    """The run's ``model.json``; a :class:`RunnerError` saying why a run has none."""
    path = run_dir / MODEL_JSON
    if not run_dir.is_dir():
        raise RunnerError(f"{run_dir}: no such run directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        summary = (run_dir / "summary.json").exists()
        why = (
            "it was trained with [run] save_model = false, or before runner saved models"
            if summary
            else "its training has not finished (or it crashed)"
        )
        raise RunnerError(f"{run_dir} holds no trained model ({MODEL_JSON}): {why}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunnerError(f"{path}: cannot read it: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunnerError(f"{path}: not a runner model description")
    if data.get("format_version") != FORMAT_VERSION:
        raise RunnerError(
            f"{path}: format version {data.get('format_version')!r}; this runner reads {FORMAT_VERSION} "
            "(upgrade runner-core)"
        )
    return data


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays and tensors become numbers
    and lists, tuples lists, anything else unknown its ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars, tensors
    if callable(tolist):
        return jsonable(tolist())
    return str(value)
