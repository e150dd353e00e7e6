"""A local plugin for the ddp tests (loaded with ``-p``): a dataset that records which
sample indices each rank reads, a callback that injects failures, and a minimal
checkpointer built on the engine's own state capture (torch.save, every N steps).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import torch

from runner import BuildContext, RegisterComponent, RunContext, hookimpl


def attempt() -> int:
    """How many times the elastic agent restarted this worker."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


class Indexed(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Classification samples; with ``record``, each index read is appended to
    ``run_dir/indices-rank<R>.txt`` as ``"<attempt> <epoch> <index>"``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, meta: dict[str, Any], record: Path | None) -> None:
        self.x, self.y, self.meta, self.record = x, y, meta, record
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.record is not None:
            with open(self.record, "a", encoding="utf-8") as file:
                file.write(f"{attempt()} {self.epoch} {index}\n")
        return self.x[index], self.y[index]


def indexed(
    split: str,
    source: str = "synthetic",
    num_samples: int = 60,
    record: bool = True,
    ctx: BuildContext | None = None,
) -> Indexed:
    """``source = "digits"``: the runner-datasets digits split; else Gaussian clusters."""
    assert ctx is not None
    if source == "digits":
        from runner_datasets.components import Digits

        data = Digits(split=split).build()
        x, y = data.tensors
        meta = dict(data.meta)
    else:
        generator = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
        centers = torch.randn(3, 8, generator=torch.Generator().manual_seed(42)) * 2
        y = torch.randint(0, 3, (num_samples,), generator=generator)
        x = centers[y] + torch.randn(num_samples, 8, generator=generator)
        meta = {"in_features": 8, "num_classes": 3}
    path = Path(ctx.run_dir) / f"indices-rank{ctx.rank}.txt" if record else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    return Indexed(x, y, meta, path)


class Faults:
    """Injects a failure on one rank at one step of the first attempt (``kind``: raise,
    kill, or stop: SIGSTOP, a hang); can stop the run early (``stop_at_step``), pause every
    rank at a step (``pause_at_step``, ``pause_s``) and save the final weights
    (``save_final``). Records the worker's pid in ``run_dir/pid-rank<R>-attempt<A>.txt``."""

    def __init__(
        self,
        rank: int = -1,
        step: int = 0,
        kind: str = "raise",
        stop_at_step: int = 0,
        save_final: bool = False,
        pause_at_step: int = 0,
        pause_s: float = 0.0,
        ctx: BuildContext | None = None,
    ) -> None:
        self.rank, self.step, self.kind = rank, step, kind
        self.stop_at_step, self.save_final = stop_at_step, save_final
        self.pause_at_step, self.pause_s = pause_at_step, pause_s
        if ctx is not None:  # let tests check that no worker outlives the job
            run_dir = Path(ctx.run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / f"pid-rank{ctx.rank}-attempt{attempt()}.txt").write_text(str(os.getpid()), encoding="utf-8")

    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        if global_step == self.pause_at_step and not attempt():
            # Every rank waits here (a test signals the launcher meanwhile): the run then
            # stops at a known step, the next one (the ranks agree one step late).
            (run.run_dir / f"paused-rank{run.backend.rank}.txt").write_text(str(os.getpid()), encoding="utf-8")
            time.sleep(self.pause_s)
        if global_step == self.stop_at_step:
            run.should_stop = True
            run.stop_reason = f"stopped at step {global_step}"
        if attempt() or run.backend.rank != self.rank or global_step != self.step:
            return
        (run.run_dir / "fault.txt").write_text(f"{time.time()}\n", encoding="utf-8")
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "stop":  # hangs: the process no longer runs at all
            os.kill(os.getpid(), signal.SIGSTOP)
        raise ValueError(f"injected failure at step {global_step}")

    def on_end_train(self, run: RunContext) -> None:
        if self.save_final and run.is_primary:
            torch.save(getattr(run.model, "module", run.model).state_dict(), run.run_dir / "final.pt")


class StepCheckpointer:
    """Saves ``run.capture_state()`` every ``every_n_steps`` on rank 0 (atomic rename),
    with a barrier after each save; every rank restores the newest."""

    def __init__(self, run_dir: Path, every_n_steps: int = 1) -> None:
        self.root = Path(run_dir) / "ckpt"
        self.every = every_n_steps

    def on_end_train_step(self, run: RunContext, global_step: int) -> None:
        if global_step % self.every:
            return
        state = run.capture_state()  # collective: every rank calls it
        if run.is_primary:
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = self.root / f".step-{global_step:06d}.pt"
            torch.save(state, temporary)
            temporary.replace(self.root / f"step-{global_step:06d}.pt")
        run.backend.barrier()

    def restore(self, run: RunContext, source: str | None) -> bool:
        paths = [Path(source)] if source and Path(source).is_file() else sorted(self.root.glob("step-*.pt"))
        if source and Path(source).is_dir():
            paths = sorted((Path(source) / "ckpt").glob("step-*.pt"))
        if not paths:
            return False
        run.restore_state(torch.load(paths[-1], weights_only=False))
        return True


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    register("indexed", indexed)


@hookimpl
def register_callbacks(register: RegisterComponent) -> None:
    register("faults", Faults)


@hookimpl
def register_checkpointers(register: RegisterComponent) -> None:
    register("step", StepCheckpointer)
