"""Read and write safetensors files without copies, hashing while the bytes move.

The format (https://github.com/huggingface/safetensors) is an 8-byte little-endian header
length, a JSON header ``{name: {dtype, shape, data_offsets}}`` and the raw tensor bytes.
Files written here load with ``safetensors.torch.load_file`` and the reader accepts files
the safetensors library writes; the library itself is not needed.

Writing streams each tensor's memory straight to the file while a second thread computes
the sha256 of the same memory. Reading fills each tensor's own storage straight from the
file, hashing each chunk as it arrives. Parsing is strict: an unknown dtype, an offset
out of bounds or a hole in the data is an error, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from runner_checkpoint.fsutil import CHUNK, open_regular
from runner_checkpoint.hashing import Hasher

_DTYPE_NAMES: dict[str, str] = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
    "I16": "int16",
    "I8": "int8",
    "U64": "uint64",
    "U32": "uint32",
    "U16": "uint16",
    "U8": "uint8",
    "BOOL": "bool",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "C64": "complex64",
}
DTYPES: dict[str, torch.dtype] = {
    code: getattr(torch, name) for code, name in _DTYPE_NAMES.items() if hasattr(torch, name)
}
CODES: dict[torch.dtype, str] = {dtype: code for code, dtype in DTYPES.items()}
ITEMSIZE: dict[torch.dtype, int] = {dtype: dtype.itemsize for dtype in DTYPES.values()}
MAX_HEADER = 100 * 1024 * 1024

if sys.byteorder != "little":  # pragma: no cover - every platform torch ships for is little-endian
    raise ImportError("runner-checkpoint writes little-endian safetensors files and needs a little-endian machine")


class TensorFileError(ValueError):
    """A file is not a well-formed safetensors file."""


def _bytes_view(flat: torch.Tensor) -> memoryview:
    """A writable byte view of a contiguous 1-d CPU tensor's memory (no copy)."""
    array: Any = flat.view(torch.uint8).numpy()
    return memoryview(array).cast("B")


def raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The tensor's bytes, without a copy when it is already a contiguous CPU tensor."""
    flat = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous().reshape(-1)
    return _bytes_view(flat)


def encode(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> list[memoryview]:
    """The chunks of a safetensors file holding ``tensors``, in file order.

    Data is laid out by decreasing element size (as the safetensors library does), so
    every tensor is aligned to its own element size within the data.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    order = sorted(tensors, key=lambda key: (-tensors[key].element_size(), key))
    chunks: list[memoryview] = []
    offset = 0
    entries: dict[str, object] = {}
    for key in order:
        tensor = tensors[key]
        if tensor.layout is not torch.strided or tensor.is_quantized or tensor.device.type == "meta":
            raise TensorFileError(f"tensor {key!r}: only dense tensors can be stored (found {tensor.layout})")
        code = CODES.get(tensor.dtype)
        if code is None:
            raise TensorFileError(f"tensor {key!r}: dtype {tensor.dtype} cannot be stored in safetensors")
        data = raw_bytes(tensor)
        entries[key] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + data.nbytes]}
        offset += data.nbytes
        chunks.append(data)
    header.update(sorted(entries.items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return [memoryview(len(text).to_bytes(8, "little") + text), *chunks]


def write(path: Path, chunks: Iterable[memoryview]) -> tuple[int, str]:
    """Write ``chunks`` to a new file at ``path`` (no fsync); returns (size, sha256)."""
    size, hasher = write_hashing(path, chunks)
    return size, hasher.result()


def write_hashing(path: Path, chunks: Iterable[memoryview]) -> tuple[int, Hasher]:
    """Like :func:`write`, but the sha256 is still being computed by a background thread
    over the same memory: ``hasher.result()`` waits for it, so it can overlap the next
    file's write and the fsyncs. ``chunks`` must stay unchanged until then.
    """
    parts = list(chunks)
    hasher = Hasher()
    for part in parts:
        hasher.update(part)
    size = 0
    try:
        with open(path, "xb", buffering=0) as file:
            for part in parts:
                view = part
                while view.nbytes:
                    written = file.write(view)
                    if written is None:  # pragma: no cover - only for non-blocking files
                        raise OSError(f"short write to {path}")
                    view = view[written:]
                size += part.nbytes
    except BaseException:
        hasher.result()
        raise
    return size, hasher


def read(path: Path, size: int, name: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Read a safetensors file of ``size`` bytes; returns its tensors and the file's sha256."""
    tensors, hasher = read_hashing(path, size, name)
    return tensors, hasher.result()


def read_hashing(path: Path, size: int, name: str | None = None) -> tuple[dict[str, torch.Tensor], Hasher]:
    """Read a safetensors file of ``size`` bytes; returns its tensors and the hasher of
    the file's bytes (``hasher.result()`` is the sha256; it may still be running).

    Every tensor gets its own storage, filled straight from the file (no intermediate
    buffer, no copy), while a background thread hashes each chunk as it arrives. The
    header is validated before any tensor is allocated: an unknown dtype, an offset out
    of bounds, an overlap or a hole raise :class:`TensorFileError`, as does a file shorter
    or longer than ``size``; anything but a regular file raises ``fsutil.NotRegularFile``.
    Callers compare the hash before using the tensors.
    """
    label = name or path.name
    hasher = Hasher()
    tensors: dict[str, torch.Tensor] = {}
    try:
        with open_regular(path) as file:
            prefix = _read_exactly(file, 8, label)
            header_size = int.from_bytes(prefix, "little")
            if header_size > min(MAX_HEADER, size - 8):
                raise TensorFileError(f"{label}: not a safetensors file (header length {header_size} is impossible)")
            raw = _read_exactly(file, header_size, label)
            hasher.update(prefix + raw)
            layout = _layout(raw, size - 8 - header_size, label)
            for key, dtype, shape, begin, end in layout:
                tensor = torch.empty(shape, dtype=dtype)
                tensors[key] = tensor
                if begin == end:
                    continue
                view = _bytes_view(tensor.reshape(-1))
                position = 0
                while position < view.nbytes:
                    count = file.readinto(view[position : position + CHUNK])
                    if not count:
                        raise TensorFileError(f"{label}: ends inside tensor {key!r}")
                    hasher.update(view[position : position + count])
                    position += count
            if file.read(1):
                raise TensorFileError(f"{label}: longer than {size} bytes")
    except BaseException:
        hasher.result()
        raise
    return tensors, hasher


def _read_exactly(file: Any, count: int, label: str) -> bytes:
    data = file.read(count) if count else b""
    while len(data) < count:
        more = file.read(count - len(data))
        if not more:
            raise TensorFileError(f"{label}: not a safetensors file (only {len(data)} of {count} bytes)")
        data += more
    return bytes(data)


def _layout(raw: bytes, data_size: int, name: str) -> list[tuple[str, torch.dtype, list[int], int, int]]:
    """Validated (key, dtype, shape, begin, end) of every tensor, in file order."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TensorFileError(f"{name}: not a safetensors file (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise TensorFileError(f"{name}: not a safetensors file (header is not a JSON object)")
    layout = []
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        dtype, shape, begin, end = _entry(name, key, entry, data_size)
        layout.append((key, dtype, shape, begin, end))
    layout.sort(key=lambda item: (item[3], item[4]))
    position = 0
    for key, _, _, begin, end in layout:
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a hole before it"
            raise TensorFileError(f"{name}: tensor {key!r} {problem}")
        position = end
    if position != data_size:
        raise TensorFileError(f"{name}: {data_size - position} bytes after the last tensor")
    return layout


def _entry(name: str, key: str, entry: object, data_size: int) -> tuple[torch.dtype, list[int], int, int]:
    where = f"{name}: tensor {key!r}"
    if not isinstance(entry, dict):
        raise TensorFileError(f"{where}: entry is not an object")
    dtype = DTYPES.get(entry.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise TensorFileError(f"{where}: unsupported dtype {entry.get('dtype')!r}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise TensorFileError(f"{where}: bad shape {shape!r}")
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_size
    ):
        raise TensorFileError(f"{where}: bad data_offsets {offsets!r}")
    if (offsets[1] - offsets[0]) != math.prod(shape) * ITEMSIZE[dtype]:
        raise TensorFileError(f"{where}: {offsets[1] - offsets[0]} bytes do not hold shape {shape} of {dtype}")
    return dtype, shape, offsets[0], offsets[1]
