"""What the core's per-step signal agreement costs a DDP step (2 gloo ranks on CPU).

Every training process runs ``runner._engine.signals.SignalService``: at the end of each
optimizer step, ``agreed()`` waits for the previous step's asynchronous all-reduce of a
one-element "did this rank get SIGINT/SIGTERM?" flag and starts the next one, so the
collective overlaps a whole step. This benchmark trains the tiny MLP of ``bench/ddp.py``
(DistributedDataParallel, SGD, batches of 64, the same shape in every step) in two
processes and times blocks of steps with and without ``agreed()`` at the end of each
step, interleaved in the same processes (ABAB...), so both see the same machine load;
it reports the median step time of each and their paired ratio. Run ``bench/ddp.py`` for
the whole of runner against a hand-written loop (it has a ``runner, no agreement`` row
too, across separate launches).

    .venv/bin/python bench/signal_agreement.py            # about a minute on 2 cores
    .venv/bin/python bench/signal_agreement.py --blocks 40 --steps 100
    .venv/bin/python bench/signal_agreement.py --every-step   # one all-reduce per step, unspaced

Benchmarks print results; they never fail on a threshold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

IN_FEATURES, HIDDEN, NUM_CLASSES = 64, 256, 10


class Backend:
    """The part of runner's Backend the signal service uses."""

    def __init__(self, rank: int, world_size: int) -> None:
        self.rank, self.world_size = rank, world_size

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(tensor)
        return tensor


def worker(rank: int, world_size: int, port: int, args: argparse.Namespace, queue: Any) -> None:
    from torch.nn.parallel import DistributedDataParallel

    from runner._engine import signals
    from runner._engine.signals import SignalService

    if args.every_step:  # the agreement at every step boundary, as before it was spaced out
        signals.MIN_INTERVAL_S = 0.0
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(IN_FEATURES, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, NUM_CLASSES))
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(rank)
    x = torch.randn(args.batch, IN_FEATURES, generator=generator)
    y = torch.randint(0, NUM_CLASSES, (args.batch,), generator=generator)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    times: dict[str, list[float]] = {"with": [], "without": []}
    service = SignalService(Backend(rank, world_size), torch.device("cpu"), announce=False)
    with service:
        for block in range(args.blocks):
            kind = "with" if block % 2 == 0 else "without"
            dist.barrier()
            started = time.perf_counter()
            for _ in range(args.steps):
                step()
                if kind == "with":
                    service.agreed()
            times[kind].append((time.perf_counter() - started) / args.steps * 1e6)
    if rank == 0:
        queue.put({**times, "every": [float(service._agreement.every)]})
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=30, help="timed blocks (alternating with/without)")
    parser.add_argument("--steps", type=int, default=100, help="steps per block")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--every-step", action="store_true", help="agree at every step (no spacing)")
    args = parser.parse_args()
    from runner_ddp.backend import free_port

    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = free_port()
    processes = [context.Process(target=worker, args=(rank, 2, port, args, queue)) for rank in range(2)]
    for process in processes:
        process.start()
    times = queue.get()
    for process in processes:
        process.join()
    with_, without = times["with"], times["without"]
    paired = [a / b for a, b in zip(with_, without, strict=False)]
    print(
        f"signal agreement, 2 gloo ranks, MLP {IN_FEATURES}-{HIDDEN}-{NUM_CLASSES}, batch {args.batch}, "
        f"{args.blocks} blocks of {args.steps} steps, torch {torch.__version__}, {os.cpu_count()} CPUs"
    )
    print(f"  the ranks agreed to run the agreement every {int(times['every'][0])} step(s)")
    print(f"  with agreed() each step: median {statistics.median(with_):.0f} us/step (min {min(with_):.0f})")
    print(f"  without:                 median {statistics.median(without):.0f} us/step (min {min(without):.0f})")
    print(
        f"  paired ratio with/without: median {statistics.median(paired):.3f} "
        f"(quartiles {statistics.quantiles(paired, n=4)[0]:.3f}..{statistics.quantiles(paired, n=4)[2]:.3f}); "
        f"difference of medians {statistics.median(with_) - statistics.median(without):+.0f} us/step"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
