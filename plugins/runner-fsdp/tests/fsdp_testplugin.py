"""A local plugin for the fsdp tests (loaded with ``-p``): a dataset that records which
sample indices each rank reads, a model of nested blocks (units for ``wrap``) and a
callback that stops the run at a step.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from runner import BuildContext, RegisterComponent, RunContext, hookimpl


class Indexed(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Gaussian clusters; with ``record``, each index read is appended to
    ``run_dir/indices-rank<R>.txt`` as ``"<epoch> <index>"``."""

    def __init__(self, split: str, num_samples: int, record: Path | None) -> None:
        generator = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
        centers = torch.randn(3, 8, generator=torch.Generator().manual_seed(42)) * 2
        self.y = torch.randint(0, 3, (num_samples,), generator=generator)
        self.x = centers[self.y] + torch.randn(num_samples, 8, generator=generator)
        self.meta = {"in_features": 8, "num_classes": 3}
        self.record = record
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.record is not None:
            with open(self.record, "a", encoding="utf-8") as file:
                file.write(f"{self.epoch} {index}\n")
        return self.x[index], self.y[index]


def indexed(split: str, num_samples: int = 60, record: bool = True, ctx: BuildContext | None = None) -> Indexed:
    assert ctx is not None
    path = Path(ctx.run_dir) / f"indices-rank{ctx.rank}.txt" if record else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return Indexed(split, num_samples, path)


class Block(torch.nn.Module):
    """Linear, ReLU: the unit the tests shard on its own (``wrap = ["Block"]``)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


def blocks(ctx: BuildContext, width: int = 16, depth: int = 2) -> torch.nn.Module:
    """in -> width, ``depth`` blocks, width -> classes."""
    meta = ctx.meta
    return torch.nn.Sequential(
        torch.nn.Linear(meta["in_features"], width),
        *[Block(width) for _ in range(depth)],
        torch.nn.Linear(width, meta["num_classes"]),
    )


class StopAt:
    """Stops the run after optimizer step ``step``; records the worker's pid."""

    def __init__(self, step: int = 0, ctx: BuildContext | None = None) -> None:
        self.step = step
        if ctx is not None:
            run_dir = Path(ctx.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / f"pid-rank{ctx.rank}.txt").write_text(str(os.getpid()), encoding="utf-8")

    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        if global_step == self.step:
            run.should_stop = True
            run.stop_reason = f"stopped at step {global_step}"


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    register("fsdp_indexed", indexed)


@hookimpl
def register_models(register: RegisterComponent) -> None:
    register("fsdp_blocks", blocks)


@hookimpl
def register_callbacks(register: RegisterComponent) -> None:
    register("fsdp_stop", StopAt)
