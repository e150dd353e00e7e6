"""A sharded, streaming dataset for data larger than memory: Arrow IPC shard files,
memory-mapped (the ``arrow_shards`` dataset).

Why this format. Three were candidates: WebDataset-style tar shards, MosaicML
``streaming`` (MDS shards) and Arrow. MosaicML streaming is not installed here and
brings a download/cache stack aimed at object stores; WebDataset tars are read
sequentially (no random access inside a shard, so resuming mid-shard means reading and
decoding what is skipped, and every sample is decoded from bytes). Arrow IPC files need
only pyarrow, which the processing cache already uses for record shards (``[[process]]
format = "arrow"`` writes exactly these files), and they are memory-mapped: a batch is a
slice or a gather of a zero-copy view, any row can be reached without reading the rows
before it (exact resume costs nothing), and the pages are the kernel's page cache, shared
by loader workers and dropped when a shard is closed. So memory stays flat: a worker holds
at most two shards mapped at a time (a batch may straddle two) and nothing else grows
with the dataset.

What an epoch is. The order is a pure function of ``(seed, epoch)``: the shards in a
seeded random order, each shard's rows in a seeded random order (``shuffle = true``; in
file order otherwise). That order is padded or cut like the core samplers' (with
``drop_last = false`` it is padded from its own start to a multiple of the world size;
with ``drop_last = true`` its tail is cut), then rank ``r`` takes the ``r``-th contiguous
block (so a rank reads about ``1/world_size`` of the shards), and loader worker ``w`` of
``n`` takes the rank's batches ``w, w + n, ...``, which torch's loader interleaves back in
order: the batches are the same for any ``num_workers``, and every sample appears exactly
once per epoch across ranks and workers (when the world size divides the dataset). Resuming
after ``k`` batches starts at the rank's sample ``k * batch_size`` by arithmetic: nothing
skipped is read.

Batches come out whole (``yields_batches``): a list with one entry per field, a tensor for
numeric and fixed-size (nested) list fields (shape ``(batch, ...)``), a list of Python values
for strings, variable-length lists and nested records.
"""

from __future__ import annotations

import bisect
import glob
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner import DataError

#: Schema metadata key holding the dataset's ``meta`` (sizes models read), written by :func:`write_shards`.
META_KEY = b"runner.meta"


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # the submodule is not imported by `import pyarrow`
    except ImportError as exc:
        raise DataError("the arrow_shards dataset needs pyarrow: pip install 'runner-datasets[arrow]'") from exc
    return pyarrow


def shard_files(path: str | Sequence[str]) -> list[str]:
    """The shard files ``path`` names: a directory (its ``*.arrow`` files, sorted), a glob
    pattern, a file, or a list of those."""
    if not isinstance(path, str):
        return [f for p in path for f in shard_files(p)]
    if Path(path).is_dir():
        found = sorted(str(p) for p in Path(path).glob("*.arrow"))
        if not found:
            raise DataError(f"{path}: no *.arrow shard files in this directory")
        return found
    if glob.has_magic(path):
        found = sorted(glob.glob(path, recursive=True))
        if not found:
            raise DataError(f"{path}: no shard file matches")
        return found
    if not Path(path).is_file():
        raise DataError(f"{path}: no such shard file or directory")
    return [path]


def _open(path: str) -> Any:
    """The table of one shard, memory-mapped (zero copy)."""
    pa = _pyarrow()
    try:
        with pa.memory_map(path, "r") as source:
            return pa.ipc.open_file(source).read_all()
    except Exception as exc:
        raise DataError(f"{path}: not an Arrow IPC shard: {type(exc).__name__}: {exc}") from exc


def _rows_and_schema(path: str) -> tuple[int, Any]:
    pa = _pyarrow()
    try:
        with pa.memory_map(path, "r") as source:
            reader = pa.ipc.open_file(source)
            return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches)), reader.schema
    except Exception as exc:
        raise DataError(f"{path}: not an Arrow IPC shard: {type(exc).__name__}: {exc}") from exc


def _fixed_shape(arrow_type: Any) -> tuple[tuple[int, ...], Any] | None:
    """``(shape, value type)`` of a (nested) fixed-size list of numbers, ``((), type)`` for a
    number, None for anything else (strings, variable-length lists, records)."""
    pa = _pyarrow()
    shape: list[int] = []
    while pa.types.is_fixed_size_list(arrow_type):
        shape.append(arrow_type.list_size)
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type):
        return tuple(shape), arrow_type
    return None


class _Column:
    """One field of one open shard: a zero-copy numpy view for numbers and fixed-size
    lists (rows gathered by numpy), else the Arrow array (rows gathered by Arrow)."""

    def __init__(self, chunked: Any) -> None:
        array = chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
        fixed = _fixed_shape(array.type)
        self.view: np.ndarray[Any, Any] | None = None
        self.array = array
        if fixed is not None and array.null_count == 0:
            shape, _ = fixed
            values = array
            for _ in shape:
                values = values.flatten()
            if not _pyarrow().types.is_boolean(values.type):
                self.view = values.to_numpy(zero_copy_only=True).reshape(len(array), *shape)

    def take(self, rows: np.ndarray[Any, Any] | slice) -> Any:
        if self.view is not None:
            taken = self.view[rows]
            return taken.copy() if isinstance(rows, slice) else taken  # fancy indexing copies already
        if isinstance(rows, slice):
            return self.array.slice(rows.start, rows.stop - rows.start).to_pylist()
        return self.array.take(rows).to_pylist()


def _join(parts: list[Any]) -> Any:
    if isinstance(parts[0], np.ndarray):
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts))
    return [value for part in parts for value in part]


class _OpenShards:
    """The shards this process has mapped, at most ``keep``: the oldest is closed (its
    pages unmapped) when another opens, so memory does not grow with the dataset."""

    def __init__(self, dataset: ArrowShards, epoch: int, keep: int = 2) -> None:
        self.dataset = dataset
        self.epoch = epoch
        self.keep = keep
        self.open: OrderedDict[int, tuple[list[_Column], np.ndarray[Any, Any] | None]] = OrderedDict()

    def get(self, shard: int) -> tuple[list[_Column], np.ndarray[Any, Any] | None]:
        if shard in self.open:
            self.open.move_to_end(shard)
            return self.open[shard]
        while len(self.open) >= self.keep:
            self.open.popitem(last=False)
        table = _open(self.dataset.files[shard])
        columns = [_Column(table.column(name)) for name in self.dataset.fields]
        order = self.dataset.row_order(self.epoch, shard)
        self.open[shard] = (columns, order)
        return self.open[shard]


class ArrowShards(torch.utils.data.IterableDataset[Any]):
    """A stream of whole batches from Arrow IPC shard files (see the module documentation).

    ``files``: the shard files, in order; ``fields``: the columns that make a batch, in
    order (default: every column of the first shard); ``shuffle``: seeded shard and row
    order per epoch. The loader calls :meth:`set_shard` (rank, world size, batch size),
    :meth:`set_epoch` and :meth:`set_start`.
    """

    shards_itself = True
    yields_batches = True

    def __init__(
        self, files: Sequence[str], fields: Sequence[str] = (), *, shuffle: bool = True, seed: int = 0
    ) -> None:
        if not files:
            raise DataError("arrow_shards: no shard files")
        self.files = [str(f) for f in files]
        counted = [_rows_and_schema(f) for f in self.files]
        self.rows = [rows for rows, _ in counted]
        schema = counted[0][1]
        self.fields = list(fields) or list(schema.names)
        for path, (_, other) in zip(self.files, counted, strict=True):
            missing = [f for f in self.fields if f not in other.names]
            if missing:
                raise DataError(f"{path}: no field {missing[0]!r}; fields: {', '.join(other.names)}")
        self.schema = schema
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size, self.batch_size, self.drop_last = 0, 1, 1, False
        self.epoch = 0
        self.start = 0
        self.meta = self._meta()

    # -- what the loader tells it -----------------------------------------------------

    def set_shard(self, *, rank: int, world_size: int, batch_size: int, drop_last: bool, seed: int) -> None:
        """Where this copy runs and how the loader batches (from the loader table)."""
        self.rank, self.world_size, self.batch_size, self.drop_last = rank, world_size, batch_size, drop_last
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_start(self, start: int) -> None:
        """Begin the next pass at this rank's sample ``start`` (a resume: nothing before it is read)."""
        self.start = start

    # -- the epoch's layout ----------------------------------------------------------------

    @property
    def total(self) -> int:
        """Samples in all shards."""
        return sum(self.rows)

    def span(self) -> tuple[int, int]:
        """This rank's ``[first, last)`` positions in the epoch's (padded or cut) order."""
        total, world = self.total, self.world_size
        length = total - total % world if self.drop_last and world > 1 else -(-total // world) * world
        per = length // world
        return self.rank * per, (self.rank + 1) * per

    def __len__(self) -> int:
        """This rank's samples per epoch."""
        first, last = self.span()
        return last - first

    def shard_order(self, epoch: int) -> np.ndarray[Any, Any]:
        count = len(self.files)
        if not self.shuffle:
            return np.arange(count)
        return np.random.default_rng([self.seed, epoch, 0xA770]).permutation(count)

    def row_order(self, epoch: int, shard: int) -> np.ndarray[Any, Any] | None:
        """Shard ``shard``'s rows in epoch ``epoch`` (None: file order)."""
        if not self.shuffle:
            return None
        return np.random.default_rng([self.seed, epoch, 0xA771, shard]).permutation(self.rows[shard])

    def layout(self, epoch: int) -> tuple[list[int], list[int]]:
        """Epoch ``epoch``'s shard order and where each shard starts in it (plus the end)."""
        order = [int(i) for i in self.shard_order(epoch)]
        starts = [0]
        for shard in order:
            starts.append(starts[-1] + self.rows[shard])
        return order, starts

    def segments(self, first: int, last: int, layout: tuple[list[int], list[int]]) -> Iterator[tuple[int, int, int]]:
        """``(shard, lo, hi)`` pieces of positions ``[first, last)``: rows ``lo:hi`` of the
        shard in its epoch order (positions past the end wrap to the start: padding)."""
        order, starts = layout
        total = starts[-1]
        position = first
        while position < last:
            at = position % total
            stop = min(last, position + (total - at))
            end = at + (stop - position)
            index = bisect.bisect_right(starts, at) - 1
            while at < end:
                high = min(end, starts[index + 1])
                if high > at:
                    yield order[index], at - starts[index], high - starts[index]
                at = high
                index += 1
            position = stop

    # -- iteration -------------------------------------------------------------------------

    def __iter__(self) -> Iterator[list[Any]]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        first, last = self.span()
        first += self.start
        size = self.batch_size
        count = max(0, last - first)
        batches = count // size if self.drop_last else -(-count // size)
        shards = _OpenShards(self, self.epoch)
        layout = self.layout(self.epoch)
        for number in range(worker, batches, workers):
            low = first + number * size
            yield self._batch(shards, layout, low, min(low + size, last))

    def _batch(self, shards: _OpenShards, layout: tuple[list[int], list[int]], first: int, last: int) -> list[Any]:
        pieces = list(self.segments(first, last, layout))
        if len(pieces) == 1:  # the common case: the batch lies in one shard
            shard, low, high = pieces[0]
            columns, order = shards.get(shard)
            rows: np.ndarray[Any, Any] | slice = slice(low, high) if order is None else order[low:high]
            return [_join([column.take(rows)]) for column in columns]
        parts: list[list[Any]] = [[] for _ in self.fields]
        for shard, low, high in pieces:
            columns, order = shards.get(shard)
            rows = slice(low, high) if order is None else order[low:high]
            for field, column in enumerate(columns):
                parts[field].append(column.take(rows))
        return [_join(part) for part in parts]

    # -- meta ------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        """Sizes models read: the writer's (schema metadata ``runner.meta``), else
        ``in_features`` from the first field's shape and, for an integer last field (a
        label), ``num_classes`` from its largest value."""
        stored = (self.schema.metadata or {}).get(META_KEY)
        if stored:
            loaded = json.loads(stored)
            return dict(loaded) if isinstance(loaded, dict) else {}
        meta: dict[str, Any] = {}
        fixed = _fixed_shape(self.schema.field(self.fields[0]).type)
        if fixed is not None:
            meta["in_features"] = int(np.prod(fixed[0])) if fixed[0] else 1
        label = _fixed_shape(self.schema.field(self.fields[-1]).type) if len(self.fields) > 1 else None
        if label is not None and label[0] == () and _pyarrow().types.is_integer(label[1]):
            # An integer label: classes from its largest value (one column read, shard by shard).
            import pyarrow.compute as pc

            highest = max((pc.max(_open(f).column(self.fields[-1])).as_py() or 0 for f in self.files), default=0)
            meta.update(num_classes=int(highest) + 1, task="classification")
        return meta

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self.files)} shards, {self.total} samples, fields={self.fields}, "
            f"shuffle={self.shuffle}, rank {self.rank}/{self.world_size})"
        )


def from_recipe(
    *, path: Sequence[str], output: str | None, cache_dir: str | None, fields: Sequence[str], shuffle: bool, seed: int
) -> ArrowShards:
    """The ``arrow_shards`` dataset of a recipe: shard files, or a processed output's shards."""
    if output is not None:
        from runner import output_shards

        files, fmt = output_shards(output, cache_dir)
        if fmt != "arrow":
            raise DataError(
                f'processed output {output!r} is stored as {fmt}: arrow_shards streams format = "arrow" outputs '
                "(use the processed dataset, or set the step's format)"
            )
        return ArrowShards([str(f) for f in files], fields, shuffle=shuffle, seed=seed)
    return ArrowShards(shard_files(list(path)), fields, shuffle=shuffle, seed=seed)


def write_shards(
    directory: str | Path,
    batches: Iterable[Mapping[str, Any]],
    *,
    rows_per_shard: int,
    meta: Mapping[str, Any] | None = None,
    prefix: str = "shard",
) -> list[Path]:
    """Write ``batches`` (mappings of field name to a column: numpy array, tensor or list)
    as Arrow IPC shard files of ``rows_per_shard`` rows (the last may hold fewer) in
    ``directory``; ``meta`` is stored for :attr:`ArrowShards.meta`. Returns the files.
    Memory holds one shard's rows at most."""
    pa = _pyarrow()
    from runner_datasets.records import column_array

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pending: list[Any] = []
    rows = 0

    def flush(tables: list[Any]) -> None:
        table = pa.concat_tables(tables).combine_chunks()
        if meta is not None:
            table = table.replace_schema_metadata({META_KEY: json.dumps(dict(meta), sort_keys=True)})
        path = out / f"{prefix}-{len(written):06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(1, table.num_rows))
        written.append(path)

    for batch in batches:
        table = pa.table({str(name): column_array(values) for name, values in batch.items()})
        while table.num_rows:
            take = min(table.num_rows, rows_per_shard - rows)
            pending.append(table.slice(0, take))
            rows += take
            table = table.slice(take)
            if rows == rows_per_shard:
                flush(pending)
                pending, rows = [], 0
    if pending:
        flush(pending)
    return written
