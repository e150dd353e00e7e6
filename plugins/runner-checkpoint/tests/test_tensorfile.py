"""The safetensors reader/writer: round trips, interoperability, strict parsing."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import safetensors.torch
import torch

from runner_checkpoint import tensorfile
from runner_checkpoint.fsutil import sha256_file


def sample_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=generator)
    return {
        "f32": base,
        "f64": base.double(),
        "f16": base.half(),
        "bf16": base.bfloat16(),
        "i64": torch.arange(7),
        "i8": torch.tensor([-3, 4], dtype=torch.int8),
        "u8": torch.tensor([255, 0, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 4),
        "transposed": base.t(),  # not contiguous
        "slice": base[2:4, 1:],  # a view into a larger storage
    }


def write(path: Path, tensors: dict[str, torch.Tensor]) -> tuple[int, str]:
    return tensorfile.write(path, tensorfile.encode(tensors, {"format": "pt"}))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


def test_round_trip_every_dtype(tmp_path: Path) -> None:
    tensors = sample_tensors()
    size, digest = write(tmp_path / "t.safetensors", tensors)
    assert (size, digest) == sha256_file(tmp_path / "t.safetensors")
    loaded, read_digest = tensorfile.read(tmp_path / "t.safetensors", size)
    assert read_digest == digest
    assert_same(tensors, loaded)
    for tensor in loaded.values():  # each tensor owns its storage
        assert tensor.storage_offset() == 0


def test_files_load_with_the_safetensors_library(tmp_path: Path) -> None:
    tensors = sample_tensors()
    write(tmp_path / "ours.safetensors", tensors)
    assert_same(tensors, safetensors.torch.load_file(tmp_path / "ours.safetensors"))


def test_reads_files_of_the_safetensors_library(tmp_path: Path) -> None:
    tensors = {k: v.contiguous() for k, v in sample_tensors().items()}
    safetensors.torch.save_file(tensors, tmp_path / "theirs.safetensors", metadata={"a": "b"})
    size, digest = sha256_file(tmp_path / "theirs.safetensors")
    loaded, read_digest = tensorfile.read(tmp_path / "theirs.safetensors", size)
    assert read_digest == digest
    assert_same(tensors, loaded)


def forge(path: Path, header: object, data: bytes = b"") -> int:
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path.stat().st_size


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, None),
        ({"a": {"dtype": "OBJ", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unsupported dtype"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "do not hold"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, b"\0" * 8, "bad data_offsets"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            b"\0" * 8,
            "overlaps",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8, "hole"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8, "after the last tensor"),
        ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "bad shape"),
        ([1, 2], b"", "not a JSON object"),
    ],
)
def test_malformed_headers_are_refused(tmp_path: Path, header: object, data: bytes, message: str | None) -> None:
    size = forge(tmp_path / "x.safetensors", header, data)
    if message is None:
        tensors, _ = tensorfile.read(tmp_path / "x.safetensors", size)
        assert torch.equal(tensors["a"], torch.zeros(2))
        return
    with pytest.raises(tensorfile.TensorFileError, match=message):
        tensorfile.read(tmp_path / "x.safetensors", size)


def test_garbage_and_pickles_are_not_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(tensorfile.TensorFileError, match="not a safetensors file"):
        tensorfile.read(path, path.stat().st_size)
    path.write_bytes(b"\xff" * 8 + b"{}")
    with pytest.raises(tensorfile.TensorFileError, match="impossible"):
        tensorfile.read(path, path.stat().st_size)


def test_size_mismatch_is_refused(tmp_path: Path) -> None:
    size, _ = write(tmp_path / "t.safetensors", {"a": torch.ones(100)})
    with pytest.raises(tensorfile.TensorFileError):
        tensorfile.read(tmp_path / "t.safetensors", size - 4)
    with open(tmp_path / "t.safetensors", "ab") as file:
        file.write(b"tail")
    with pytest.raises(tensorfile.TensorFileError, match="longer than"):
        tensorfile.read(tmp_path / "t.safetensors", size)
