"""Streaming benchmark (issue 16): runner-datasets' ``arrow_shards`` against pyarrow's own loop.

Generates ``--samples`` samples (default 1,048,576: a float32 vector of ``--dim`` = 768
features, 3 KiB, and an int64 label) as Arrow IPC shards of ``--rows-per-shard`` rows in a
temporary directory (about 3.2 GB; deleted afterwards), then measures, each variant in a
fresh process and interleaved over ``--rounds`` rounds (default 5; medians reported):

* ``pyarrow loop``: pyarrow's own reading loop, the baseline: each shard memory-mapped and
  read (``pa.ipc.open_file(pa.memory_map(path)).read_all()``), sliced into batches of
  ``--batch-size`` rows, each column copied into a torch tensor. What a hand-written
  Arrow reader does.
* ``arrow_shards``: the same shards, in file order (``shuffle = false``), through
  ``runner._data.build.make_loader`` (the loader a recipe gets), 0 workers: the same work
  plus runner's epoch layout, rank split, resume arithmetic and loader. Target: >= 0.95x the
  baseline's samples/s.
* ``arrow_shards shuffled``: seeded shard order and row order within shards (a gather per
  batch instead of a slice), 0 workers; and with ``--workers`` loader workers.

Peak RSS is sampled every 50 ms while a variant runs (the process and its loader workers,
summed): resident anonymous memory (what the process owns) and resident file pages (the
mapped shards it touched; the kernel may drop them at any time). Flat memory means both
stay far below the data set's size.

    .venv/bin/python bench/streaming.py            # ~3-6 minutes on 2 cores, 3.2 GB of disk
    .venv/bin/python bench/streaming.py --small    # quick check: 65,536 samples, ~20 s

Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

VARIANTS = ("pyarrow loop", "arrow_shards", "arrow_shards shuffled", "arrow_shards shuffled, workers")


def _rss_kib(pid: int) -> tuple[int, int]:
    """(RssAnon, RssFile) of ``pid`` in KiB, (0, 0) when it is gone."""
    values = {"RssAnon:": 0, "RssFile:": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            parts = line.split()
            if parts and parts[0] in values:
                values[parts[0]] = int(parts[1])
    except OSError:
        pass
    return values["RssAnon:"], values["RssFile:"]


def _children(pid: int) -> list[int]:
    """Child processes of ``pid``'s main thread (loader workers are started from it)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class PeakRss:
    """Samples this process's and its children's resident memory every 50 ms."""

    def __init__(self) -> None:
        self.anon = self.file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            anon = file = 0
            for pid in [os.getpid(), *_children(os.getpid())]:
                a, f = _rss_kib(pid)
                anon, file = anon + a, file + f
            self.anon, self.file = max(self.anon, anon), max(self.file, file)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# -- data ---------------------------------------------------------------------------------


def generate(directory: Path, samples: int, dim: int, rows_per_shard: int) -> list[str]:
    import numpy as np

    from runner_datasets.arrow_shards import write_shards

    rng = np.random.default_rng(0)

    def chunks() -> Iterator[dict[str, Any]]:
        for start in range(0, samples, rows_per_shard):
            count = min(rows_per_shard, samples - start)
            x = rng.random((count, dim), dtype=np.float32)
            yield {"x": x, "y": np.arange(start, start + count, dtype=np.int64) % 10}

    files = write_shards(directory, chunks(), rows_per_shard=rows_per_shard, meta={"in_features": dim})
    return [str(f) for f in files]


# -- variants (each run in its own process) ----------------------------------------------------


def pyarrow_loop(files: list[str], batch_size: int) -> Iterator[tuple[Any, Any]]:
    """pyarrow's own loop: map each shard, slice batches, copy the columns into tensors."""
    import pyarrow as pa
    import pyarrow.ipc
    import torch

    for path in files:
        with pa.memory_map(path, "r") as source:
            table = pa.ipc.open_file(source).read_all()
        x_col, y_col = table.column("x").chunk(0), table.column("y").chunk(0)
        dim = x_col.type.list_size
        x_all = x_col.flatten().to_numpy(zero_copy_only=True).reshape(-1, dim)
        y_all = y_col.to_numpy(zero_copy_only=True)
        for start in range(0, table.num_rows, batch_size):
            stop = start + batch_size
            yield torch.from_numpy(x_all[start:stop].copy()), torch.from_numpy(y_all[start:stop].copy())
        del table, x_col, y_col, x_all, y_all


def runner_loader(files: list[str], batch_size: int, shuffle: bool, workers: int) -> Any:
    from types import SimpleNamespace

    from runner._data.build import make_loader
    from runner_datasets.arrow_shards import ArrowShards

    ctx = SimpleNamespace(rank=0, world_size=1, seed=0)
    params = {"batch_size": batch_size, "num_workers": workers}
    return make_loader(ArrowShards(files, shuffle=shuffle), params, ctx=ctx)


def measure(variant: str, files: list[str], batch_size: int, workers: int) -> dict[str, Any]:
    """One pass of ``variant``; imports and building the loader (reading the shards'
    footers) are not timed, opening and reading the shards is."""
    import pyarrow as pa
    import pyarrow.ipc  # imported before the clock starts
    import torch  # noqa: F401

    import runner._data.build  # noqa: F401
    import runner_datasets.arrow_shards  # noqa: F401

    makers: dict[str, Callable[[], Any]] = {
        "pyarrow loop": lambda: pyarrow_loop(files, batch_size),
        "arrow_shards": lambda: runner_loader(files, batch_size, False, 0),
        "arrow_shards shuffled": lambda: runner_loader(files, batch_size, True, 0),
        "arrow_shards shuffled, workers": lambda: runner_loader(files, batch_size, True, workers),
    }
    # Both sides pay pyarrow's first-use costs before the clock (arrow_shards opens the
    # shards' footers when it is built).
    with pa.memory_map(files[0], "r") as source:
        pa.ipc.open_file(source).read_all()
    batches = makers[variant]()
    with PeakRss() as peak:
        started = time.perf_counter()
        samples = checksum = 0
        for _, y in batches:
            samples += len(y)
            checksum += int(y.sum())
        elapsed = time.perf_counter() - started
    return {"samples": samples, "seconds": elapsed, "anon_kib": peak.anon, "file_kib": peak.file, "sum": checksum}


# -- driver -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1 << 20)
    parser.add_argument("--dim", type=int, default=768, help="float32 features per sample")
    parser.add_argument("--rows-per-shard", type=int, default=16384)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="65,536 samples of 64 features, 2 rounds")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the shards (default: a temp dir)")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)  # internal: one variant, JSON out
    parser.add_argument("--files", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        files = json.loads(Path(args.files).read_text())
        print(json.dumps(measure(args.measure, files, args.batch_size, args.workers)))
        return
    if args.small:
        args.samples, args.dim, args.rows_per_shard, args.rounds = 1 << 16, 64, 4096, 2

    work = Path(tempfile.mkdtemp(prefix="runner-streaming-", dir=args.dir))
    try:
        started = time.perf_counter()
        files = generate(work / "shards", args.samples, args.dim, args.rows_per_shard)
        size = sum(Path(f).stat().st_size for f in files)
        print(
            f"data: {args.samples:,} samples x ({args.dim} float32 + int64 label) in {len(files)} shards, "
            f"{size / 1e9:.2f} GB on disk, written in {time.perf_counter() - started:.1f} s ({work})"
        )
        listing = work / "files.json"
        listing.write_text(json.dumps(files))
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for round_ in range(args.rounds):
            order = VARIANTS[round_ % len(VARIANTS) :] + VARIANTS[: round_ % len(VARIANTS)]
            for variant in order:
                command = [sys.executable, __file__, "--measure", variant, "--files", str(listing)]
                command += ["--batch-size", str(args.batch_size), "--workers", str(args.workers)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                results[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
        report(results, args, size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace, size: int) -> None:
    """Medians, bests (noise from other work only slows a pass down, so the best of the
    rounds is the steadier estimate on a shared machine) and per-round ratios."""
    rates = {v: [r["samples"] / r["seconds"] for r in rows] for v, rows in results.items()}
    base = rates["pyarrow loop"]
    sums = {r["sum"] for rows in results.values() for r in rows}
    counts = {r["samples"] for rows in results.values() for r in rows}
    print(f"check: every variant read {counts} samples, label sums {sums} (one value each: the same data)")
    print(f"batch {args.batch_size}, {args.rounds} rounds; peak RSS sampled every 50 ms (with workers)")
    header = f"{'variant':<34} {'median/s':>10} {'best/s':>10} {'best vs':>8} {'ratio/round':>11}"
    print(f"{header} {'RSS anon':>9} {'RSS file':>9}")
    for variant, rows in results.items():
        mine = rates[variant]
        paired = statistics.median(m / b for m, b in zip(mine, base, strict=True))
        anon = max(r["anon_kib"] for r in rows) / 1024
        file = max(r["file_kib"] for r in rows) / 1024
        name = variant + (f" ({args.workers})" if variant.endswith("workers") else "")
        print(
            f"{name:<34} {statistics.median(mine):>10,.0f} {max(mine):>10,.0f} {max(mine) / max(base):>7.2f}x "
            f"{paired:>10.2f}x {anon:>5,.0f} MiB {file:>5,.0f} MiB"
        )
    for variant in results:
        print(f"  {variant}: " + ", ".join(f"{rate:,.0f}" for rate in rates[variant]))
    print(f"(data set: {size / 2**20:,.0f} MiB; 'ratio/round': median over rounds of this / pyarrow in the same round)")


if __name__ == "__main__":
    main()
