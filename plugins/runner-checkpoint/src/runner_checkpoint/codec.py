"""Split a nested run state into tensors (for safetensors files) and a JSON skeleton.

The skeleton is plain JSON that mirrors the state; tensors are replaced by references
``{"$t": [file, key]}``. Python types JSON cannot tell apart are tagged so they come
back exactly: tuples (``$tuple``), dicts with non-string keys (``$dict``), non-finite
floats (``$f``), numpy scalars and arrays, torch dtypes, devices and sizes, bytes.
Anything else is refused with the path to the offending value: a checkpoint never
falls back to pickle.

Sharded tensors (``DTensor``: the fsdp backend's parameters and optimizer state) are not
written to safetensors files: :func:`encode` collects them by key (their path in the
state, ``model/0.weight``) for torch.distributed.checkpoint, every rank its own shards,
and the skeleton refers to them as ``{"$dcp": key}`` (see :mod:`runner_checkpoint.sharded`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
#: Tensor files are split into shards of about this size, hashed in parallel threads.
SHARD_BYTES = 64 * 1024 * 1024
TAGS = ("$t", "$nd", "$tuple", "$dict", "$f", "$np", "$dtype", "$device", "$size", "$bytes", "$dcp")


#: What a plugin's ``get_state`` may return, as error messages say it.
STORABLE = "return dicts, lists, numbers, strings, bools, None, tensors or numpy arrays"
#: The top-level key under which the engine merges the ``get_state`` results of plugins.
PLUGINS_KEY = "plugins"


class CodecError(ValueError):
    """A value in the state cannot be stored without pickle (or a skeleton is malformed).

    For an unstorable value, ``path`` is where it is in the state (keys and indices from
    the top) and ``type_name`` its type; :func:`describe` words it for users.
    """

    def __init__(self, message: str, path: tuple[Any, ...] = (), type_name: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class _DictKey:
    """Marks, in a path, the key (rather than the value) of a dict entry."""

    def __repr__(self) -> str:
        return "<key>"


DICT_KEY = _DictKey()


def _path(parts: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in parts) or "<root>"


def subscripts(parts: tuple[Any, ...]) -> str:
    """A path as Python subscripts, unambiguous whatever the keys hold: ``['a/b'][0]``."""
    return "".join(f"[{part!r}]" for part in parts)


def describe(path: tuple[Any, ...], type_name: str, owner: str | None = None) -> str:
    """One line saying which value of the state cannot be stored and what would fix it.

    A value under ``plugins`` came from a plugin's ``get_state``: the line names its state
    key (and ``owner``, the plugin that returned it, when known)."""
    if len(path) >= 2 and path[0] == PLUGINS_KEY:
        key, inner = path[1], path[2:]
        source = f"returned by get_state of {owner}" if owner else "returned by a plugin's get_state"
        where = f" at {subscripts(inner)}" if inner else ""
        return f"state key {key!r} ({source}): cannot store a {type_name}{where} in a checkpoint; {STORABLE}"
    return f"state{subscripts(path)}: cannot store a {type_name} in a checkpoint; {STORABLE}"


def type_name(value: Any) -> str:
    """``set`` for builtins, ``module.Class`` for the others."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def is_sharded(value: Any) -> bool:
    """Whether ``value`` is a DTensor (checked without importing torch.distributed when unused)."""
    return isinstance(value, torch.Tensor) and type(value).__name__ == "DTensor" and hasattr(value, "placements")


#: Types that hold nothing (checked before the slower ``Mapping`` test).
ATOMIC = frozenset({type(None), bool, int, float, str, bytes})


def has_shards(state: Any) -> bool:
    """Whether ``state`` holds a sharded tensor anywhere (a walk, nothing copied; it runs at
    every save, so plain dicts, lists and values take the fast paths)."""
    stack = [state]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind in ATOMIC:
            continue
        if kind is dict:
            stack.extend(node.values())
        elif kind is list or kind is tuple:
            if not set(map(type, node)) <= ATOMIC:  # in C: the RNG states' 625 integers cost nothing
                stack.extend(node)
        elif isinstance(node, torch.Tensor):
            if is_sharded(node):
                return True
        elif isinstance(node, Mapping):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return False


def shard_key(path: tuple[Any, ...]) -> str:
    """The key of a sharded tensor in torch.distributed.checkpoint: its path, ``/``-joined."""
    return "/".join(str(p) for p in path)


class ShardRef:
    """Where a decoded state holds a sharded tensor still to be read (its ``key``)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"ShardRef({self.key!r})"


class _Encoder:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, torch.Tensor]] = {}
        self.shards: dict[str, torch.Tensor] = {}
        self._seen: dict[tuple[Any, ...], list[str]] = {}
        self._storages: set[tuple[Any, int]] = set()

    def tensor_ref(self, tensor: torch.Tensor, path: tuple[Any, ...]) -> list[str]:
        identity = (
            tensor.device,
            tensor.dtype,
            tensor.data_ptr(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
        )
        if tensor.numel() and identity in self._seen:  # the same tensor twice (tied weights): store once
            return self._seen[identity]
        if path and path[0] == "model":
            file, key = MODEL_FILE, ".".join(str(p) for p in path[1:]) or "model"
        else:
            file, key = STATE_FILE, "/".join(str(p) for p in path)
        tensors = self.files.setdefault(file, {})
        unique, index = key, 1
        while unique in tensors:
            index += 1
            unique = f"{key}#{index}"
        # Storage shared with a tensor already stored (a view of it): store an own copy.
        storage = (tensor.device, tensor.untyped_storage().data_ptr()) if tensor.numel() else None
        tensors[unique] = tensor.detach().clone() if storage is not None and storage in self._storages else tensor
        if storage is not None:
            self._storages.add(storage)
        ref = [file, unique]
        if tensor.numel():
            self._seen[identity] = ref
        return ref

    def encode(self, value: Any, path: tuple[Any, ...]) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.generic):
            return int(value)
        if isinstance(value, float):
            number = float(value)
            if math.isfinite(number):
                return number
            return {"$f": "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")}
        if is_sharded(value):
            key = shard_key(path)
            self.shards[key] = value
            return {"$dcp": key}
        if isinstance(value, torch.Tensor):
            return {"$t": self.tensor_ref(value, path)}
        if isinstance(value, torch.Size):
            return {"$size": list(value)}
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, (*path, i)) for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: self.encode(v, (*path, k)) for k, v in value.items()}
            pairs = [[self.encode(k, (*path, DICT_KEY)), self.encode(v, (*path, k))] for k, v in value.items()]
            return {"$dict": pairs}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                name = "numpy object array"
                raise CodecError(describe(path, name) + " (object arrays need pickle)", path, name)
            return {"$nd": self.tensor_ref(torch.from_numpy(np.ascontiguousarray(value)), path)}
        if isinstance(value, np.generic):
            return {"$np": [value.dtype.str, self.encode(value.item(), path)]}
        if isinstance(value, torch.dtype):
            return {"$dtype": str(value).removeprefix("torch.")}
        if isinstance(value, torch.device):
            return {"$device": str(value)}
        if isinstance(value, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
        name = type_name(value)
        raise CodecError(describe(path, name), path, name)


class _Checker(_Encoder):
    """An encoder that only checks: tensors are not collected."""

    def tensor_ref(self, tensor: torch.Tensor, path: tuple[Any, ...]) -> list[str]:
        return ["", ""]


def check(value: Any, path: tuple[Any, ...] = ()) -> None:
    """Raise the :class:`CodecError` that encoding ``value`` (found at ``path`` in the
    state) would raise, without collecting or copying its tensors."""
    _Checker().encode(value, path)


def encode(state: Any, shard_bytes: int = SHARD_BYTES) -> tuple[Any, dict[str, dict[str, torch.Tensor]]]:
    """The JSON skeleton of ``state`` and its tensors by file name and key (no DTensors:
    :func:`encode_sharded` takes those)."""
    skeleton, files, shards = encode_sharded(state, shard_bytes)
    if shards:
        raise CodecError(f"state{subscripts(tuple(next(iter(shards)).split('/')))}: a sharded tensor (DTensor)")
    return skeleton, files


def encode_sharded(
    state: Any, shard_bytes: int = SHARD_BYTES
) -> tuple[Any, dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """The JSON skeleton of ``state``, its tensors by file name and key, and its sharded
    tensors (DTensors) by key.

    Tensors under the top-level ``"model"`` key go to ``model.safetensors`` under their
    state-dict names (so that file is a plain weights file); all others go to
    ``state.safetensors``. A file above ``shard_bytes`` is split into shards named like
    Hugging Face's (``model-00001-of-00003.safetensors``), so they hash in parallel.
    """
    encoder = _Encoder()
    skeleton = encoder.encode(state, ())
    renamed: dict[tuple[str, str], str] = {}
    files: dict[str, dict[str, torch.Tensor]] = {}
    for file, tensors in encoder.files.items():
        shards: list[dict[str, torch.Tensor]] = [{}]
        size = 0
        for key, tensor in tensors.items():
            nbytes = tensor.numel() * tensor.element_size()
            if shards[-1] and size + nbytes > shard_bytes:
                shards.append({})
                size = 0
            shards[-1][key] = tensor
            size += nbytes
        stem = file.removesuffix(".safetensors")
        for index, shard in enumerate(shards, start=1):
            name = file if len(shards) == 1 else f"{stem}-{index:05d}-of-{len(shards):05d}.safetensors"
            files[name] = shard
            renamed.update({(file, key): name for key in shard})
    return _rename(skeleton, renamed), files, encoder.shards


def _rename(node: Any, renamed: dict[tuple[str, str], str]) -> Any:
    """The skeleton with each tensor reference pointing at its shard."""
    if isinstance(node, list):
        return [_rename(v, renamed) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1 and ("$t" in node or "$nd" in node):
        ((tag, (file, key)),) = node.items()
        return {tag: [renamed[(file, key)], key]}
    return {k: _rename(v, renamed) for k, v in node.items()}


def decode(skeleton: Any, files: Mapping[str, Mapping[str, torch.Tensor]]) -> Any:
    """Rebuild the state from its skeleton and the tensors of each file; a sharded tensor
    is a :class:`ShardRef` (see :func:`fill_shards`)."""
    return _decode(skeleton, files, ())


def shard_refs(state: Any) -> list[str]:
    """The keys of every :class:`ShardRef` in a decoded state."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, ShardRef):
            found.append(node.key)
        elif isinstance(node, Mapping):
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(state)
    return found


def fill_shards(state: Any, shards: Mapping[str, torch.Tensor]) -> Any:
    """``state`` with each :class:`ShardRef` replaced by the tensor ``shards`` holds for its key."""
    if isinstance(state, ShardRef):
        return shards[state.key]
    if isinstance(state, dict):
        return {k: fill_shards(v, shards) for k, v in state.items()}
    if isinstance(state, list):
        return [fill_shards(v, shards) for v in state]
    if isinstance(state, tuple):
        return tuple(fill_shards(v, shards) for v in state)
    return state


def _tensor(ref: Any, files: Mapping[str, Mapping[str, torch.Tensor]], path: tuple[Any, ...]) -> torch.Tensor:
    if not (isinstance(ref, list) and len(ref) == 2 and all(isinstance(r, str) for r in ref)):
        raise CodecError(f"{_path(path)}: malformed tensor reference {ref!r}")
    file, key = ref
    if file not in files or key not in files[file]:
        raise CodecError(f"{_path(path)}: tensor {key!r} missing from {file}")
    return files[file][key]


def _decode(node: Any, files: Mapping[str, Mapping[str, torch.Tensor]], path: tuple[Any, ...]) -> Any:
    if isinstance(node, list):
        return [_decode(v, files, (*path, i)) for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((tag, body),) = node.items()
        if tag in TAGS:
            return _tagged(tag, body, files, path)
    return {k: _decode(v, files, (*path, k)) for k, v in node.items()}


def _tagged(tag: str, body: Any, files: Mapping[str, Mapping[str, torch.Tensor]], path: tuple[Any, ...]) -> Any:
    try:
        if tag == "$t":
            return _tensor(body, files, path)
        if tag == "$nd":
            return _tensor(body, files, path).numpy()
        if tag == "$tuple":
            return tuple(_decode(v, files, (*path, i)) for i, v in enumerate(body))
        if tag == "$dict":
            return {_hashable(_decode(k, files, path)): _decode(v, files, (*path, k)) for k, v in body}
        if tag == "$f":
            return float(body)
        if tag == "$np":
            dtype, value = body
            return np.dtype(dtype).type(_decode(value, files, path))
        if tag == "$dtype":
            dtype = getattr(torch, body)
            if not isinstance(dtype, torch.dtype):
                raise CodecError(f"{_path(path)}: {body!r} is not a torch dtype")
            return dtype
        if tag == "$device":
            return torch.device(body)
        if tag == "$size":
            return torch.Size(body)
        if tag == "$dcp":
            if not isinstance(body, str):
                raise CodecError(f"{_path(path)}: malformed sharded tensor reference {body!r}")
            return ShardRef(body)
        return base64.b64decode(body.encode("ascii"), validate=True)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"{_path(path)}: malformed {tag} value: {type(exc).__name__}: {exc}") from None


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    return key
