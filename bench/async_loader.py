"""Async dataset servers vs torch DataLoader: time to first batch and samples/s.

A dataset whose construction takes ``--build`` seconds (5 by default) and whose samples
each cost ``--cost`` ms of CPU (2 by default). The DataLoader builds the dataset in the
training process, then its workers fetch; the async loader builds it in each server
process, overlapping with whatever the training process does meanwhile (here: nothing,
so time to first batch is the fair comparison of start-up) and streams collated batches.

    .venv/bin/python bench/async_loader.py            # the full run (5 s build, 2 ms/sample)
    .venv/bin/python bench/async_loader.py --quick    # a fast check
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))


class SlowDataset(torch.utils.data.Dataset[Any]):
    """Construction sleeps ``build`` s; each sample burns ``cost`` ms of CPU."""

    def __init__(self, n: int = 2000, build: float = 5.0, cost: float = 2.0) -> None:
        time.sleep(build)
        self.n, self.cost = n, cost / 1000.0
        self.meta = {"in_features": 16}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        end = time.thread_time() + self.cost
        x = 0.0
        while time.thread_time() < end:
            x += 1.0
        return torch.full((16,), float(index)), index % 10


def slow_dataset(n: int = 2000, build: float = 5.0, cost: float = 2.0) -> SlowDataset:
    return SlowDataset(n, build, cost)


def measure(make: Any, epochs: int = 1) -> tuple[float, float, int]:
    start = time.perf_counter()
    loader = make()
    first = None
    samples = 0
    t_after_first = 0.0
    for epoch in range(epochs):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        for batch in loader:
            if first is None:
                first = time.perf_counter() - start
                t_after_first = time.perf_counter()
            else:
                samples += len(batch[1])
    elapsed = time.perf_counter() - t_after_first
    close = getattr(loader, "close", None)
    if callable(close):
        close()
    return first or 0.0, samples / elapsed if elapsed else 0.0, samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 s build, 1 ms/sample, 400 samples")
    parser.add_argument("--build", type=float, default=5.0)
    parser.add_argument("--cost", type=float, default=2.0)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if args.quick:
        args.build, args.cost, args.n = 1.0, 1.0, 400

    from runner import Component, ComponentConfig, LoaderConfig, PluginInfo, Registry, SplitConfig
    from runner_dataserver.params import AsyncLoaderParams

    registry = Registry()
    info = PluginInfo("bench", "bench", "0")
    registry.add(Component("dataset", "slow", "async_loader:slow_dataset", info))
    params = {"n": args.n, "build": args.build, "cost": args.cost}
    config = LoaderConfig(batch_size=args.batch, shuffle=True)
    split = SplitConfig("train", ComponentConfig("dataset", "slow", params, "data.train.dataset"), config)

    print(f"dataset: {args.n} samples, build {args.build:g} s, {args.cost:g} ms/sample; batch {args.batch}")
    print(f"{'loader':<28} {'first batch (s)':>16} {'samples/s':>10}")
    for workers in (1, 2):

        def torch_loader(workers: int = workers) -> Any:
            dataset = SlowDataset(**params)
            return torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=workers)

        def async_loader(workers: int = workers) -> Any:
            return AsyncLoaderParams(servers=workers).build(split=split, registry=registry)

        for name, make in (
            (f"DataLoader num_workers={workers}", torch_loader),
            (f"async servers={workers}", async_loader),
        ):
            first, rate, _ = measure(make)
            print(f"{name:<28} {first:>16.2f} {rate:>10.0f}", flush=True)


if __name__ == "__main__":
    main()
