"""A content-addressed cache of processed shards.

Layout under the cache directory (``[[process]] cache_dir``, else ``$RUNNER_CACHE_DIR``,
else ``$XDG_CACHE_HOME/runner/process``, else ``~/.cache/runner/process``)::

    shards/<key>.safetensors | .npz     one shard's output tensors
    shards/<key>.arrow | .parquet        one shard's output records (strings, ragged lists,
                                         nested fields: :mod:`runner._processing.records`)
    outputs/<name>.json                  the merged output: step key, shard keys in order,
                                         analysis (when computed)
    nodes/<launch>-<step key>            node 0's marker under a multi-node launch
                                         (:mod:`runner._processing.nodes`)

A shard key hashes the processor name, its plugin's distribution and version, the
processor parameters and the content hashes of the shard's inputs, so any change to
one of them makes a new key and nothing stale is ever read. Files are written to a
temporary name and renamed, so a crash never leaves a half-written shard. An output that
cannot be written (strings in a tensor format, ragged columns) is a :class:`DataError`
naming the cache, the shard and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner._contract.errors import DataError
from runner._processing import records

TENSOR_FORMATS = ("safetensors", "npz")
FORMATS = (*TENSOR_FORMATS, *records.RECORD_FORMATS)


def cache_root(configured: str | None = None) -> Path:
    """The cache directory: ``configured``, else ``$RUNNER_CACHE_DIR``, else the user cache
    (``$XDG_CACHE_HOME/runner/process`` or ``~/.cache/runner/process``)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("RUNNER_CACHE_DIR"):
        return Path(os.environ["RUNNER_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "runner" / "process"


def file_hash(path: Path) -> str:
    """sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def shard_key(processor: str, plugin: str, params: Mapping[str, Any], input_hashes: list[str]) -> str:
    payload = canonical({"processor": processor, "plugin": plugin, "params": dict(params), "inputs": input_hashes})
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def step_key(shard_keys: list[str]) -> str:
    return hashlib.sha256(canonical(shard_keys).encode()).hexdigest()[:32]


class Cache:
    """Reads and writes shards and output manifests under ``root``."""

    def __init__(self, root: Path, fmt: str = "safetensors") -> None:
        if fmt not in FORMATS:
            raise DataError(f"unknown shard format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.root = root
        self.fmt = fmt

    def shard_path(self, key: str) -> Path:
        return self.root / "shards" / f"{key}.{self.fmt}"

    def has_shard(self, key: str) -> bool:
        return self.shard_path(key).exists()

    def write_shard(self, key: str, data: Any) -> Path:
        """Write one shard's output (see :func:`to_tensors`, :func:`records.to_table`)."""
        path = self.shard_path(key)
        where = f"cache {self.root}: shard {key} ({self.fmt})"
        if self.fmt in TENSOR_FORMATS:
            tensors = to_tensors(data, where)
        else:
            table = records.to_table(data, where)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            if self.fmt == "safetensors":
                from safetensors.torch import save_file

                save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
            elif self.fmt == "npz":
                import numpy as np

                with tmp.open("wb") as handle:
                    np.savez(handle, **{k: v.numpy() for k, v in tensors.items()})
            else:
                records.write_table(table, tmp, self.fmt)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{where}: cannot write {path}: {exc.strerror or exc}") from exc
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise DataError(f"{where}: cannot write it: {type(exc).__name__}: {exc}") from exc
        os.replace(tmp, path)
        return path

    def manifest_path(self, name: str) -> Path:
        return self.root / "outputs" / f"{name}.json"

    def read_manifest(self, name: str) -> dict[str, Any] | None:
        path = self.manifest_path(name)
        if not path.exists():
            return None
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return None
        return loaded if isinstance(loaded, dict) else None

    def write_manifest(self, name: str, manifest: dict[str, Any]) -> None:
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def load_output_from(self, keys: list[str], fmt: str | None = None) -> dict[str, Any]:
        """Shards ``keys`` merged: each field's shards concatenated in order (tensors for
        the tensor formats, ``pyarrow.ChunkedArray`` columns for ``arrow`` and ``parquet``)."""
        fmt = fmt or self.fmt
        paths = [self.root / "shards" / f"{key}.{fmt}" for key in keys]
        if fmt in records.RECORD_FORMATS:
            if not paths:
                return {}
            table = records.concat([records.read_table(p) for p in paths])
            return {name: table.column(name) for name in table.column_names}
        import torch

        parts = [load_tensor_file(p) for p in paths]
        if not parts:
            return {}
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    def output_shards(self, name: str) -> tuple[list[Path], str]:
        """The shard files of output ``name`` in order, and their format."""
        manifest = self._manifest_or_error(name)
        fmt = str(manifest.get("format", self.fmt))
        return [self.root / "shards" / f"{key}.{fmt}" for key in manifest["shards"]], fmt

    def load_output(self, name: str) -> dict[str, Any]:
        """The merged output ``name``: each field's shards concatenated in input order."""
        manifest = self._manifest_or_error(name)
        return self.load_output_from(list(manifest["shards"]), str(manifest.get("format", self.fmt)))

    def _manifest_or_error(self, name: str) -> dict[str, Any]:
        manifest = self.read_manifest(name)
        if manifest is None:
            known = sorted(p.stem for p in (self.root / "outputs").glob("*.json"))
            hint = f"; outputs in {self.root}: {', '.join(known)}" if known else ""
            raise DataError(
                f"no processed output {name!r} in cache {self.root} (run `runner process RECIPE` first){hint}"
            )
        return manifest


def to_tensors(data: Any, where: str = "cache") -> dict[str, Any]:
    """A processor's output as named tensors for the tensor formats; a field that is no
    numeric array (strings, ragged lists) is a :class:`DataError` that starts with ``where``,
    names the field and points at the record formats."""
    import torch

    if not isinstance(data, Mapping):
        raise DataError(
            f"{where}: a processor's process() must return a mapping of names to arrays for this format, "
            f'found {type(data).__name__} (format = "parquet" or "arrow" store records)'
        )
    tensors: dict[str, Any] = {}
    for name, value in data.items():
        if getattr(getattr(value, "flags", None), "writeable", True) is False:
            value = value.copy()  # e.g. numpy arrays handed back by Ray: torch warns on read-only memory
        try:
            tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        except Exception as exc:
            raise DataError(
                f"{where}: field {name!r}: not a numeric array ({type(exc).__name__}: {exc}); "
                'strings, ragged lists and nested fields need format = "parquet" or "arrow"'
            ) from exc
        tensors[str(name)] = tensor.detach().cpu()
    return tensors


def load_tensor_file(path: Path) -> dict[str, Any]:
    """Tensors of a ``.safetensors``, ``.npz`` or ``.pt`` file, loaded without pickle."""
    import torch

    if not path.exists():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        if suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as arrays:
                return {k: torch.from_numpy(np.array(arrays[k])) for k in arrays.files}
        if suffix in (".pt", ".pth"):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(loaded, torch.Tensor):
                return {"data": loaded}
            if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
                return {str(k): v for k, v in loaded.items()}
            raise DataError(f"{path}: expected a tensor or a dict of tensors, found {type(loaded).__name__}")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot load: {type(exc).__name__}: {exc}") from exc
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected .safetensors, .npz or .pt")
