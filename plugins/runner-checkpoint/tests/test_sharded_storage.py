"""The storage layer of sharded checkpoints (runner_checkpoint.sharded) in one process:
raw chunks and JSON metadata round-trip every dtype exactly, damaged metadata is refused
without touching pickle, and manifests list ``dcp/`` files only in format version 2.
(Multi-process writes, resharding and resumes are runner-fsdp's tests.)"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp

from runner_checkpoint import sharded
from runner_checkpoint.manifest import SHARDED_FORMAT_VERSION, CorruptCheckpoint, read_manifest, seal


def tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "model/0.weight": torch.randn(5, 3, generator=generator),
        "model/0.bias": torch.randn(5, generator=generator).bfloat16(),
        "optimizers/0/state/0/step": torch.tensor(7.0),
        "extra/ids": torch.arange(11, dtype=torch.int64),
        "extra/mask": torch.tensor([True, False, True]),
    }


def write(directory: Path, state: dict[str, torch.Tensor]) -> dict[str, dict[str, object]]:
    writer = sharded.RawWriter(directory / sharded.DIRECTORY)
    with warnings.catch_warnings():  # one process, no process group: DCP says so
        warnings.simplefilter("ignore", UserWarning)
        dcp.save(dict(state), storage_writer=writer, no_dist=True)
    return writer.files


def test_chunks_and_metadata_round_trip_exactly(tmp_path: Path) -> None:
    original = tensors()
    files = write(tmp_path, original)
    assert sorted(files) == ["dcp/metadata.json", "dcp/rank00000.bin"]
    assert files["dcp/rank00000.bin"]["size"] == sum(t.numel() * t.element_size() for t in original.values())
    metadata = json.loads((tmp_path / "dcp" / "metadata.json").read_text())
    assert metadata["tensors"]["model/0.bias"] == {
        "dtype": "bfloat16",
        "size": [5],
        "chunks": [{"offsets": [0], "sizes": [5]}],
    }
    back = sharded.read_full(tmp_path, prefix="")
    assert sorted(back) == sorted(original)
    for key, tensor in original.items():
        assert back[key].dtype == tensor.dtype and torch.equal(back[key], tensor), key
    model = sharded.read_full(tmp_path, prefix="model/")
    assert sorted(model) == ["model/0.bias", "model/0.weight"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["tensors"]["model/0.weight"].update(dtype="object"), "'object' is not a torch dtype"),
        (lambda m: m["storage"][0].update(file="../elsewhere.bin"), re.escape("refusing file name '../elsewhere.bin'")),
        (lambda m: m["storage"][0].update(length=3), "holds 3 bytes, not"),
        (lambda m: m.update(version=99), "unsupported format"),
    ],
)
def test_damaged_metadata_is_refused(tmp_path: Path, change: object, message: str) -> None:
    write(tmp_path, tensors())
    path = tmp_path / "dcp" / "metadata.json"
    metadata = json.loads(path.read_text())
    change(metadata)  # type: ignore[operator]
    path.write_text(json.dumps(metadata))
    with pytest.raises(sharded.ShardError, match=message):
        sharded.read_full(tmp_path, prefix="")


def test_an_unstarted_optimizer_gets_state_to_read_into() -> None:
    model = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    sharded.init_optimizer_state([optimizer])
    assert set(optimizer.state_dict()["state"]) == {0, 1}
    assert optimizer.param_groups[0]["lr"] == 0.1
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # lr 0: weights unchanged
    assert all(p.grad is None for p in model.parameters())


def manifest(directory: Path, version: int, name: str) -> None:
    directory.mkdir(parents=True)
    body = {
        "format": "runner-checkpoint",
        "format_version": version,
        "files": {name: {"size": 0, "sha256": "0" * 64}, "state.json": {"size": 0, "sha256": "0" * 64}},
    }
    (directory / "manifest.json").write_text(json.dumps(seal(body)))


def test_manifests_list_shard_files_only_in_format_version_2(tmp_path: Path) -> None:
    manifest(tmp_path / "v2", SHARDED_FORMAT_VERSION, "dcp/rank00000.bin")
    assert "dcp/rank00000.bin" in read_manifest(tmp_path / "v2")["files"]
    manifest(tmp_path / "v1", 1, "dcp/rank00000.bin")
    with pytest.raises(CorruptCheckpoint, match=re.escape("refusing file name 'dcp/rank00000.bin'")):
        read_manifest(tmp_path / "v1")
    for bad in ("dcp/../model.safetensors", "dcp/.hidden", "other/rank00000.bin", "dcp/sub/x.bin"):
        manifest(tmp_path / bad.replace("/", "_"), SHARDED_FORMAT_VERSION, bad)
        with pytest.raises(CorruptCheckpoint, match="refusing file name"):
            read_manifest(tmp_path / bad.replace("/", "_"))
