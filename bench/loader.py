"""Data loader benchmarks (issue 4): the runner loader against hand-written baselines.

1. Fast path: batches of an in-memory tensor dataset through ``runner._data`` (shuffled,
   resumable sampler, one gather per batch) against a hand-written ``x[idx]`` loop over a
   ``randperm``. Target: <= 1.2x the hand loop's time per batch.
2. General path: a map-style dataset (per-sample ``__getitem__``) through the runner loader
   against ``torch.utils.data.DataLoader`` with the same dataset, batch size, shuffle and
   workers. Target: <= 1.05x its time per epoch.
3. Resume: time to the first batch of a 1M-sample epoch resumed at 90 % against a fresh
   start of the same epoch (fast path, and general path with 0 and 2 workers).
   Target: <= 100 ms above the fresh start.

Variants run interleaved, the order rotating every round; tables report medians.

    .venv/bin/python bench/loader.py           # ~1-2 minutes on 2 cores
    .venv/bin/python bench/loader.py --quick   # smoke run

Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from runner import BuildContext
from runner._data.build import make_loader

CTX = BuildContext(recipe=None, seed=0, run_dir=Path("."))  # type: ignore[arg-type]


class Rows(torch.utils.data.Dataset[Any]):
    """Map-style rows: the general path (one ``__getitem__`` per sample + collate)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[index], self.y[index]


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rounds(variants: dict[str, Callable[[], Any]], count: int) -> dict[str, list[float]]:
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(count):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(timed(variants[name]))
    return times


def consume(iterable: Any) -> int:
    count = 0
    for _ in iterable:
        count += 1
    return count


def fast_path(n: int, features: int, batch_size: int, count: int) -> None:
    x, y = torch.randn(n, features), torch.randint(0, 10, (n,))
    dataset = torch.utils.data.TensorDataset(x, y)
    loader = make_loader(dataset, {"batch_size": batch_size, "shuffle": True}, ctx=CTX)
    assert getattr(loader, "fast_path", False)
    epoch = [0]

    def runner_epoch() -> int:
        loader.set_epoch(epoch[0])
        epoch[0] += 1
        return consume(loader)

    def hand_epoch() -> int:
        generator = torch.Generator().manual_seed(epoch[0])
        order = torch.randperm(n, generator=generator)
        batches = 0
        for begin in range(0, n, batch_size):
            index = order[begin : begin + batch_size]
            _ = (x[index], y[index])
            batches += 1
        return batches

    batches = -(-n // batch_size)
    times = rounds({"hand x[idx] loop": hand_epoch, "runner fast path": runner_epoch}, count)
    hand, ours = statistics.median(times["hand x[idx] loop"]), statistics.median(times["runner fast path"])
    print(f"\n1. fast path: {n} samples x {features} features, batch {batch_size} ({batches} batches/epoch)")
    print(f"   hand x[idx] loop   {hand / batches * 1e6:8.1f} us/batch")
    print(f"   runner fast path   {ours / batches * 1e6:8.1f} us/batch")
    print(f"   ratio {ours / hand:.3f}x (target <= 1.2x)")


def general_path(n: int, features: int, batch_size: int, workers: int, count: int) -> None:
    x, y = torch.randn(n, features), torch.randint(0, 10, (n,))
    dataset = Rows(x, y)
    loader = make_loader(dataset, {"batch_size": batch_size, "shuffle": True, "num_workers": workers}, ctx=CTX)
    assert not getattr(loader, "fast_path", True)
    torch_loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)

    def runner_epoch() -> int:
        return consume(loader)

    def torch_epoch() -> int:
        return consume(torch_loader)

    times = rounds({"torch DataLoader": torch_epoch, "runner loader": runner_epoch}, count)
    theirs, ours = statistics.median(times["torch DataLoader"]), statistics.median(times["runner loader"])
    print(f"\n2. general path: {n} samples, batch {batch_size}, num_workers={workers}")
    print(f"   torch DataLoader   {theirs * 1e3:8.1f} ms/epoch")
    print(f"   runner loader      {ours * 1e3:8.1f} ms/epoch")
    print(f"   ratio {ours / theirs:.3f}x (target <= 1.05x)")


def first_batch(loader: Any, skip: int) -> float:
    start = time.perf_counter()
    loader.set_epoch(3)
    loader.skip(skip)
    iterator = iter(loader)
    next(iterator)
    elapsed = time.perf_counter() - start
    del iterator
    return elapsed


def resume(n: int, batch_size: int, count: int) -> None:
    x, y = torch.randn(n, 8), torch.randint(0, 10, (n,))
    print(f"\n3. resume of a {n}-sample epoch at 90 %, batch {batch_size}: time to first batch")
    for label, dataset, workers in (
        ("fast path", torch.utils.data.TensorDataset(x, y), 0),
        ("general, 0 workers", Rows(x, y), 0),
        ("general, 2 workers", Rows(x, y), 2),
    ):
        loader = make_loader(dataset, {"batch_size": batch_size, "shuffle": True, "num_workers": workers}, ctx=CTX)
        skip = int(0.9 * len(loader))
        fresh: list[float] = []
        resumed: list[float] = []
        for r in range(count):
            pair = [(fresh, 0), (resumed, skip)] if r % 2 == 0 else [(resumed, skip), (fresh, 0)]
            for target, k in pair:
                target.append(first_batch(loader, k))
        a, b = statistics.median(fresh), statistics.median(resumed)
        print(
            f"   {label:20s} fresh {a * 1e3:7.1f} ms   resumed at batch {skip} {b * 1e3:7.1f} ms"
            f"   difference {(b - a) * 1e3:+7.1f} ms (target <= +100 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds (smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 intra-op thread")
    if args.quick:
        fast_path(20_000, 64, 256, 3)
        general_path(2_000, 16, 64, 0, 3)
        resume(100_000, 256, 2)
        return
    fast_path(200_000, 64, 256, 15)
    general_path(20_000, 16, 64, 0, 9)
    general_path(20_000, 16, 64, 2, 7)
    resume(1_000_000, 256, 7)


if __name__ == "__main__":
    main()
