"""Sharded tensors (DTensors: the fsdp backend's parameters and optimizer state) through
torch.distributed.checkpoint (DCP), without pickle.

DCP plans which rank writes which chunk of each tensor and, when reading, which chunks
each rank of the *current* world needs (resharding: a checkpoint written by 2 processes
loads on 1 or 3). Its storage layer is pluggable; the one here keeps runner-checkpoint's
rule that nothing is ever unpickled:

- every rank writes the chunks it owns, raw bytes back to back, into one file
  ``dcp/rank00000.bin`` (its rank number), fsyncs it and hashes it while writing;
- the coordinator (rank 0) writes ``dcp/metadata.json``: each tensor's dtype, global size
  and chunks, and where each chunk's bytes are. (DCP's own file storage pickles its
  metadata and ``torch.save``\\ s every chunk.)

Both are files of the checkpoint directory like any other, listed in its manifest with
their sha256 (the coordinator learns every rank's hashes through DCP's own gather), so
``runner checkpoints verify`` and a resume detect a flipped byte in any shard.

Every rank calls :func:`write` and :func:`read` (they are collectives of ``group``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import (
    LoadPlan,
    LoadPlanner,
    Metadata,
    SavePlan,
    SavePlanner,
    StorageReader,
    StorageWriter,
)
from torch.distributed.checkpoint.metadata import (
    ChunkStorageMetadata,
    MetadataIndex,
    StorageMeta,
    TensorProperties,
    TensorStorageMetadata,
)
from torch.distributed.checkpoint.planner import WriteItemType
from torch.distributed.checkpoint.storage import WriteResult
from torch.futures import Future

from runner_checkpoint.fsutil import open_regular, read_exactly, write_new
from runner_checkpoint.tensorfile import raw_bytes

#: The folder of a checkpoint directory holding the shards.
DIRECTORY = "dcp"
METADATA = "metadata.json"
METADATA_VERSION = 1


class ShardError(ValueError):
    """The shards' metadata or bytes are not what they claim (a damaged checkpoint)."""


def rank_file(rank: int) -> str:
    return f"rank{rank:05d}.bin"


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ShardError(f"{METADATA}: {name!r} is not a torch dtype")
    return dtype


def _ints(value: Any, what: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ShardError(f"{METADATA}: {what} is not a list of integers")
    return value


# -- metadata as JSON ---------------------------------------------------------------------


def metadata_to_json(metadata: Metadata) -> dict[str, Any]:
    """DCP's metadata as plain JSON data (tensors only: nothing else is ever written)."""
    tensors: dict[str, Any] = {}
    for key, item in metadata.state_dict_metadata.items():
        if not isinstance(item, TensorStorageMetadata):
            raise ShardError(f"{key!r} is not a tensor; only tensors are written as shards")
        tensors[key] = {
            "dtype": str(item.properties.dtype).removeprefix("torch."),
            "size": list(item.size),
            "chunks": [{"offsets": list(c.offsets), "sizes": list(c.sizes)} for c in item.chunks],
        }
    storage = [
        {"fqn": index.fqn, "offset": list(index.offset) if index.offset is not None else None, **info}
        for index, info in metadata.storage_data.items()
    ]
    return {"version": METADATA_VERSION, "dcp_version": metadata.version, "tensors": tensors, "storage": storage}


def metadata_from_json(data: Any) -> Metadata:
    """The :class:`Metadata` :func:`metadata_to_json` wrote; :class:`ShardError` when malformed."""
    if not isinstance(data, dict) or data.get("version") != METADATA_VERSION:
        raise ShardError(f"{METADATA}: unsupported format")
    tensors, storage = data.get("tensors"), data.get("storage")
    if not isinstance(tensors, dict) or not isinstance(storage, list):
        raise ShardError(f"{METADATA}: malformed")
    state: dict[str, Any] = {}
    for key, item in tensors.items():
        if not isinstance(item, dict) or not isinstance(item.get("chunks"), list):
            raise ShardError(f"{METADATA}: malformed entry for {key!r}")
        chunks = [
            ChunkStorageMetadata(
                offsets=torch.Size(_ints(c.get("offsets"), f"{key} offsets")),
                sizes=torch.Size(_ints(c.get("sizes"), f"{key} sizes")),
            )
            for c in item["chunks"]
            if isinstance(c, dict)
        ]
        state[key] = TensorStorageMetadata(
            properties=TensorProperties(dtype=_dtype(str(item.get("dtype")))),
            size=torch.Size(_ints(item.get("size"), f"{key} size")),
            chunks=chunks,
        )
    where: dict[MetadataIndex, dict[str, Any]] = {}
    for entry in storage:
        if not isinstance(entry, dict) or not isinstance(entry.get("fqn"), str):
            raise ShardError(f"{METADATA}: malformed storage entry")
        offset = entry.get("offset")
        index = MetadataIndex(entry["fqn"], _ints(offset, "offset") if offset is not None else None)
        info = {k: entry.get(k) for k in ("file", "start", "length")}
        if not (isinstance(info["file"], str) and isinstance(info["start"], int) and isinstance(info["length"], int)):
            raise ShardError(f"{METADATA}: malformed storage entry for {entry['fqn']!r}")
        where[index] = info
    return Metadata(
        state_dict_metadata=state, storage_data=where, storage_meta=StorageMeta(), version=data.get("dcp_version")
    )


@contextlib.contextmanager
def dcp_errors() -> Iterator[None]:
    """DCP's ``CheckpointException`` (a ``BaseException`` carrying every rank's error) as the
    first failing rank's own exception: an ``OSError`` (a full disk) or a :class:`ShardError`."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        yield
    except CheckpointException as exc:
        failures = exc.failures
        if not failures:
            raise ShardError(str(exc)) from None
        raise failures[min(failures)][0] from None


# -- writing ------------------------------------------------------------------------------


class RawWriter(StorageWriter):
    """DCP storage: one raw file per rank, JSON metadata; records each file's size and sha256.

    After :func:`torch.distributed.checkpoint.save`, the coordinator's :attr:`files` lists
    every file written by every rank (``dcp/NAME``) with its size and sha256.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.rank = 0
        self.files: dict[str, dict[str, Any]] = {}

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        self.files = {}

    def set_up_storage_writer(self, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self.is_coordinator = is_coordinator

    def prepare_local_plan(self, plan: SavePlan) -> SavePlan:
        self.path.mkdir(parents=True, exist_ok=True)
        return plan

    def prepare_global_plan(self, plans: list[SavePlan]) -> list[SavePlan]:
        import dataclasses

        return [dataclasses.replace(plan, storage_data=rank) for rank, plan in enumerate(plans)]

    def write_data(self, plan: SavePlan, planner: SavePlanner) -> Future[list[WriteResult]]:
        future: Future[list[WriteResult]] = Future()
        if not plan.items:  # nothing of this rank's to write (its shards are empty): no file
            future.set_result([])
            return future
        name = rank_file(int(plan.storage_data))
        digest, results, position = hashlib.sha256(), [], 0
        with open(self.path / name, "xb") as file:
            for item in plan.items:
                if item.type == WriteItemType.BYTE_IO:
                    raise ShardError(f"{item.index.fqn!r} is not a tensor; only tensors are written as shards")
                tensor = planner.resolve_data(item)
                assert isinstance(tensor, torch.Tensor)
                data = raw_bytes(tensor.detach())
                file.write(data)
                digest.update(data)
                info = {"file": name, "start": position, "length": len(data)}
                results.append(WriteResult(index=item.index, size_in_bytes=len(data), storage_data=info))
                position += len(data)
            file.flush()
            os.fsync(file.fileno())
        # Every item carries its file's size and hash to the coordinator (DCP gathers the results).
        summary = {"size": position, "sha256": digest.hexdigest()}
        for result in results:
            result.storage_data["summary"] = summary
        future.set_result(results)
        return future

    def finish(self, metadata: Metadata, results: list[list[WriteResult]]) -> None:
        storage: dict[MetadataIndex, dict[str, Any]] = {}
        for result in (r for rank_results in results for r in rank_results):
            info = dict(result.storage_data)
            summary = info.pop("summary")
            self.files[f"{DIRECTORY}/{info['file']}"] = summary
            storage[result.index] = info
        metadata.storage_data = storage
        data = (json.dumps(metadata_to_json(metadata), sort_keys=True) + "\n").encode("utf-8")
        write_new(self.path / METADATA, data)
        self.files[f"{DIRECTORY}/{METADATA}"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        # Ranks without a chunk to write (more ranks than chunks) leave no file: list what exists.
        for name in os.listdir(self.path):
            if f"{DIRECTORY}/{name}" not in self.files:
                raise ShardError(f"{self.path / name}: written by no rank of this save")

    def storage_meta(self) -> StorageMeta | None:
        return None

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        return False


def write(directory: Path, shards: Mapping[str, torch.Tensor], group: Any = None) -> dict[str, dict[str, Any]]:
    """Write ``shards`` (every rank its own) into ``directory/dcp``; collective over ``group``.

    Returns, on the coordinator (rank 0 of ``group``), every file written with its size and
    sha256 (names relative to ``directory``); an empty dict on the other ranks.
    """
    import torch.distributed.checkpoint as dcp

    writer = RawWriter(directory / DIRECTORY)
    with dcp_errors():
        dcp.save(dict(shards), storage_writer=writer, process_group=group)
    return writer.files


# -- reading ------------------------------------------------------------------------------


class RawReader(StorageReader):
    """Reads what :class:`RawWriter` wrote: JSON metadata, chunks as raw bytes (no pickle)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.storage: dict[MetadataIndex, dict[str, Any]] = {}

    def reset(self, checkpoint_id: str | os.PathLike[str] | None = None) -> None:
        self.storage = {}

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        with open_regular(self.path / METADATA) as file:
            raw = read_exactly(file, 256 * 1024 * 1024)
        try:
            return metadata_from_json(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ShardError(f"{METADATA}: not valid JSON ({exc})") from None

    def set_up_storage_reader(self, metadata: Metadata, is_coordinator: bool, *args: Any, **kwargs: Any) -> None:
        self.storage = metadata.storage_data
        self.metadata = metadata

    def prepare_local_plan(self, plan: LoadPlan) -> LoadPlan:
        return plan

    def prepare_global_plan(self, plans: list[LoadPlan]) -> list[LoadPlan]:
        return plans

    def _chunk(self, file: Any, index: MetadataIndex) -> torch.Tensor:
        info = self.storage[index]
        item = self.metadata.state_dict_metadata[index.fqn]
        assert isinstance(item, TensorStorageMetadata)
        chunk = next((c for c in item.chunks if c.offsets == index.offset), None)
        if chunk is None:
            raise ShardError(f"{METADATA}: no chunk of {index.fqn!r} at {list(index.offset or ())}")
        dtype = item.properties.dtype
        expected = chunk.sizes.numel() * dtype.itemsize
        if info["length"] != expected:
            raise ShardError(f"{info['file']}: {index.fqn!r} holds {info['length']} bytes, not {expected}")
        file.seek(info["start"])
        data = bytearray(read_exactly(file, expected))
        if len(data) != expected:
            raise ShardError(f"{info['file']}: ends inside {index.fqn!r}")
        return torch.frombuffer(data, dtype=torch.uint8).view(dtype).reshape(chunk.sizes)

    def read_data(self, plan: LoadPlan, planner: LoadPlanner) -> Future[None]:
        by_file: dict[str, list[Any]] = {}
        for request in plan.items:
            by_file.setdefault(self.storage[request.storage_index]["file"], []).append(request)
        for name, requests in by_file.items():
            if os.sep in name or name.startswith("."):
                raise ShardError(f"{METADATA}: refusing file name {name!r}")
            with open_regular(self.path / name) as file:
                for request in requests:
                    chunk = self._chunk(file, request.storage_index)
                    for dim, (start, length) in enumerate(zip(request.storage_offsets, request.lengths, strict=True)):
                        chunk = chunk.narrow(dim, start, length)
                    target = planner.resolve_tensor(request).detach()
                    if target.size() != chunk.size():
                        raise ShardError(f"{name}: {request.storage_index.fqn!r} has size {list(chunk.size())}")
                    target.copy_(chunk)
                    planner.commit_tensor(request, target)
        future: Future[None] = Future()
        future.set_result(None)
        return future

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id: str | os.PathLike[str]) -> bool:
        return False


def read(directory: Path, targets: Mapping[str, torch.Tensor], group: Any = None) -> None:
    """Fill ``targets`` (this run's sharded tensors, by key) in place from ``directory/dcp``,
    resharding to this world; collective over ``group``."""
    import torch.distributed.checkpoint as dcp

    with dcp_errors():
        dcp.load(dict(targets), storage_reader=RawReader(directory / DIRECTORY), process_group=group)


def read_full(directory: Path, prefix: str) -> dict[str, torch.Tensor]:
    """Every sharded tensor whose key starts with ``prefix`` (``model/``), whole, by key, in
    this process (no process group): a sharded checkpoint's model weights for ``runner predict``."""
    import torch.distributed.checkpoint as dcp

    reader = RawReader(directory / DIRECTORY)
    metadata = reader.read_metadata()
    targets = {
        key: torch.empty(tuple(item.size), dtype=item.properties.dtype)
        for key, item in metadata.state_dict_metadata.items()
        if key.startswith(prefix) and isinstance(item, TensorStorageMetadata)
    }
    with warnings.catch_warnings(), dcp_errors():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", message="torch.distributed is disabled", category=UserWarning)
        dcp.load(targets, storage_reader=reader, no_dist=True)
    return targets


# -- around the reads and writes ----------------------------------------------------------


def init_optimizer_state(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    """Create the state of optimizers that have not stepped yet (a resumed run's, before it
    loads the checkpoint), so it has shards to read into: one step with zero gradients at
    learning rate 0, as torch's own ``torch.distributed.checkpoint.state_dict`` does. The
    checkpoint then overwrites all of it, step counts included."""
    for optimizer in optimizers:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        if optimizer.state or any(p.grad is not None for p in params):
            continue
        for param in params:
            param.grad = torch.zeros_like(param)
        rates = [group.get("lr") for group in optimizer.param_groups]
        for group in optimizer.param_groups:
            if "lr" in group:
                group["lr"] = torch.tensor(0.0) if isinstance(group["lr"], torch.Tensor) else 0.0
        optimizer.step()
        for group, rate in zip(optimizer.param_groups, rates, strict=True):
            if rate is not None:
                group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
