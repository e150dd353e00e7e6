"""runner-checkpoint against bare ``torch.save``/``torch.load``, and the cost of resuming.

1. Save: a ~100 MB model (25 x Linear(1024, 1024)) plus its Adam state (~315 MB in all),
   saved as a runner checkpoint (``checkpoint.save``: safetensors + JSON, sha256 of every
   file, fsync of every file and directory, rename, ``latest`` pointer) against
   ``torch.save`` of the same state dict to one file followed by ``fsync``.
2. Load + verify: ``checkpoint.load`` (every file hashed against the manifest, then
   rebuilt) against ``torch.load`` of the same state (``weights_only=True``, torch's
   default), both from a warm page cache.
   Save and load variants run interleaved, the order alternating; medians are reported.
3. Resume overhead at 90 % of a 1M-sample epoch: a real run (map-style dataset of one
   million samples, no tensor fast path, batches of 1000, shuffled) is checkpointed at
   step 900 of its 1000-step epoch, then resumed with ``--resume``. The time from the
   start of ``restore`` to the first training batch is compared with the checkpoint's
   read time (``checkpoint.load``) alone; skipping the 900 000 consumed samples must
   cost almost nothing. For scale: how long fetching those samples would take.

4. Asynchronous saves (``[checkpoint] async = true``): the same ~315 MB model and Adam
   state trained by a real run (``runner._engine.run.execute``, the ``single`` backend),
   saving every ``--save-every`` steps, synchronously, asynchronously and not at all. The
   *blocked time* of a save is how long the checkpointer's ``on_end_train_step`` holds the
   step (capture, copy to host memory, starting the writer); it is compared with the
   device-to-host copy alone: a clone of every tensor of the same state (on CPU, host to
   host; ``--device cuda`` copies from the GPU into pinned memory). The steps between
   saves show what the background write costs the training meanwhile.
5. FSDP against DDP peak memory per rank: ``runner run`` with ``[run] backend = "ddp"``
   and ``"fsdp"``, 2 processes on the CPU (gloo), a model of ``--memory-layers``
   Linear(2048, 2048) layers with AdamW; each rank reports its peak resident memory
   (``ru_maxrss``) and its resident memory before training (model built and wrapped).

    .venv/bin/python bench/checkpoint.py            # ~3-5 minutes on 2 cores
    .venv/bin/python bench/checkpoint.py --quick    # smoke run (smaller model, 2 repeats)
    .venv/bin/python bench/checkpoint.py --only async,memory

Targets: save <= 1.2x, load+verify <= 1.3x, resume overhead <= read + 100 ms (issue 5);
async blocked time <= 1.1x the device-to-host copy (issue 17).
Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import runner
import runner_checkpoint.plugin
from runner import PluginInfo, hookimpl
from runner._engine.run import execute
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner_checkpoint import checkpoint
from runner_checkpoint.checkpointer import DefaultCheckpointer
from runner_checkpoint.store import Store

SAVE_TARGET, LOAD_TARGET, RESUME_SLACK_S, ASYNC_TARGET = 1.2, 1.3, 0.100, 1.1
THIS = Path(__file__).resolve()


# -- 1 and 2: save and load ------------------------------------------------------------


def model_and_adam(layers: int, width: int = 1024) -> dict[str, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(layers)])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, width)).sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizers": [optimizer.state_dict()]}


def state_bytes(state: dict[str, Any]) -> int:
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, torch.Tensor):
            total += node.numel() * node.element_size()
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(state)
    return total


def torch_save_fsync(state: dict[str, Any], path: Path) -> None:
    with open(path, "wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())


def runner_save(state: dict[str, Any], store: Store, step: int) -> Path:
    entry = checkpoint.save(store, state, step=step, meta={"step": step}, provenance={"recipe": {}})
    return entry.path


def timed(fn: Callable[..., Any], *args: Any) -> float:
    """Wall seconds of ``fn(*args)``."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def timed_cpu(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds of this process (every thread), and the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def bench_save_load(layers: int, repeats: int, root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    state = model_and_adam(layers)
    size = state_bytes(state)
    store = Store(root / "checkpoints")
    names = ("torch.save", "runner save", "torch.load", "runner load")
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for index in range(repeats):
        pt = root / f"state-{index}.pt"
        order = ("torch", "runner") if index % 2 == 0 else ("runner", "torch")
        directory = None
        for kind in order:
            if kind == "torch":
                wall, used, _ = timed_cpu(torch_save_fsync, state, pt)
                times["torch.save"].append(wall)
                cpu["torch.save"].append(used)
            else:
                wall, used, directory = timed_cpu(runner_save, state, store, index)
                times["runner save"].append(wall)
                cpu["runner save"].append(used)
        for kind in order:
            name, fn, arg = (
                ("torch.load", torch.load, pt) if kind == "torch" else ("runner load", checkpoint.load, directory)
            )
            wall, used, _ = timed_cpu(fn, arg)
            times[name].append(wall)
            cpu[name].append(used)
        pt.unlink()
        store.prune(keep_last=1)
    loaded = checkpoint.load(store.root / str(store.latest_name())).state
    assert torch.equal(loaded["model"]["0.weight"], state["model"]["0.weight"])
    medians = {name: statistics.median(values) for name, values in times.items()}
    minima = {name: min(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    # Paired ratios (same round, same page-cache and disk state) resist load from other processes.
    save_ratios = [r / t for r, t in zip(times["runner save"], times["torch.save"], strict=True)]
    load_ratios = [r / t for r, t in zip(times["runner load"], times["torch.load"], strict=True)]
    return {
        "state_mb": size / 1e6,
        "repeats": repeats,
        "median_s": medians,
        "min_s": minima,
        "cpu_median_s": cpu_medians,
        "save_ratio": statistics.median(save_ratios),
        "load_ratio": statistics.median(load_ratios),
        "save_ratio_of_minima": minima["runner save"] / minima["torch.save"],
        "load_ratio_of_minima": minima["runner load"] / minima["torch.load"],
        "all": times,
        "all_cpu": cpu,
    }


# -- 3: resume overhead ----------------------------------------------------------------


class Rows(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """One million samples fetched one by one (no ``tensors`` attribute: no fast path)."""

    def __init__(self, n: int, features: int = 16) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, features, generator=generator)
        self.y = torch.randint(0, 4, (n,), generator=generator)
        self.meta = {"in_features": features, "num_classes": 4}
        self.fetched = 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.fetched += 1
        return self.x[index], self.y[index]


class Task(runner.Task):
    first_batch_at: float | None = None

    def train_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        if Task.first_batch_at is None:
            Task.first_batch_at = time.perf_counter()
        x, y = batch
        return runner.StepOutput(F.cross_entropy(model(x), y), {}, len(y))

    def val_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        return self.train_step(model, batch, step)


class BenchComponents:
    """Dataset, model, task and optimizer of the resume benchmark."""

    def __init__(self, samples: int) -> None:
        self.dataset = Rows(samples)

    @hookimpl
    def register_datasets(self, register: Any) -> None:
        register("bench_rows", lambda split="train": self.dataset)

    @hookimpl
    def register_models(self, register: Any) -> None:
        register("bench_linear", lambda ctx: torch.nn.Linear(ctx.meta["in_features"], ctx.meta["num_classes"]))

    @hookimpl
    def register_tasks(self, register: Any) -> None:
        register("bench_task", Task)

    @hookimpl
    def register_optimizers(self, register: Any) -> None:
        register("bench_sgd", lambda model: torch.optim.SGD(model.parameters(), lr=0.01))


RESUME_RECIPE = """\
[run]
name = "resume"
device = "cpu"
epochs = 1
max_steps = {max_steps}
log_every = 100
test = false
save_model = false

[data.train]
dataset = {{ name = "bench_rows" }}
loader = {{ batch_size = {batch}, shuffle = true }}

[model]
name = "bench_linear"

[task]
name = "bench_task"

[optimizer]
name = "bench_sgd"

[checkpoint]
name = "default"
every_epoch = false
"""


def bench_resume(samples: int, batch: int, root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    components = BenchComponents(samples)
    steps = samples // batch
    at = steps * 9 // 10

    def run(max_steps: int, resume: bool) -> None:
        path = root / f"resume-{max_steps}.toml"
        path.write_text(RESUME_RECIPE.format(max_steps=max_steps, batch=batch), encoding="utf-8")
        manager = PluginManager(use_entry_points=False).load()
        manager.add(runner_checkpoint.plugin, PluginInfo("checkpoint", "runner-checkpoint", "bench"))
        manager.add(components, PluginInfo("bench_checkpoint", "bench", "local"))
        recipe = validate(read_recipe(path), manager.registry, manager.failures)
        execute(recipe, manager, root / "run", resume=resume, show_progress=False)

    started = time.perf_counter()
    run(at, resume=False)  # trains 90 % of the epoch and saves at its end (save_last)
    first_run = time.perf_counter() - started
    directory = root / "run" / "checkpoints" / str(Store(root / "run" / "checkpoints").latest_name())
    reads = [timed(checkpoint.load, directory) for _ in range(5)]

    restore_started: list[float] = []
    original = DefaultCheckpointer.restore

    def timed_restore(self: DefaultCheckpointer, run_: Any, source: str | None) -> bool:
        restore_started.append(time.perf_counter())
        return original(self, run_, source)

    DefaultCheckpointer.restore = timed_restore  # type: ignore[method-assign]
    try:
        Task.first_batch_at = None
        components.dataset.fetched = 0
        run(at + 1, resume=True)
    finally:
        DefaultCheckpointer.restore = original  # type: ignore[method-assign]
    assert Task.first_batch_at is not None
    resume_s = Task.first_batch_at - restore_started[0]
    fetched = components.dataset.fetched

    loader = torch.utils.data.DataLoader(components.dataset, batch_size=batch, shuffle=False)
    iterator = iter(loader)
    fetch_started = time.perf_counter()
    for _ in range(min(at, 100)):
        next(iterator)
    naive_s = (time.perf_counter() - fetch_started) / min(at, 100) * at
    read_s = statistics.median(reads)
    return {
        "samples": samples,
        "batch_size": batch,
        "resumed_at_step": at,
        "checkpoint_mb": sum(f.stat().st_size for f in directory.iterdir()) / 1e6,
        "read_s": read_s,
        "restore_to_first_batch_s": resume_s,
        "overhead_s": resume_s - read_s,
        "samples_fetched_by_resume": fetched,
        "fetching_skipped_samples_would_take_s": naive_s,
        "first_run_s": first_run,
    }


# -- 4: asynchronous saves ---------------------------------------------------------------


class Wide(torch.utils.data.Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """In-memory random rows for the wide MLP (a tensor fast path: loading costs nothing)."""

    def __init__(self, n: int, width: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.tensors = (torch.randn(n, width, generator=generator), torch.randn(n, width, generator=generator))
        self.meta: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.tensors[0][index], self.tensors[1][index]


class Regression(runner.Task):
    def train_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        x, y = batch
        return runner.StepOutput(F.mse_loss(model(x), y), {}, len(y))

    def val_step(self, model: torch.nn.Module, batch: Any, step: runner.StepInfo) -> runner.StepOutput:
        return self.train_step(model, batch, step)


class AsyncComponents:
    """Dataset, model (``layers`` x Linear(width, width)), task and Adam of the async benchmark."""

    def __init__(self, layers: int, width: int) -> None:
        self.layers, self.width = layers, width

    @hookimpl
    def register_datasets(self, register: Any) -> None:
        register("bench_wide", lambda split="train": Wide(64, self.width))

    @hookimpl
    def register_models(self, register: Any) -> None:
        def wide() -> torch.nn.Module:
            torch.manual_seed(0)
            return torch.nn.Sequential(*[torch.nn.Linear(self.width, self.width) for _ in range(self.layers)])

        register("bench_wide", wide)

    @hookimpl
    def register_tasks(self, register: Any) -> None:
        register("bench_regression", Regression)

    @hookimpl
    def register_optimizers(self, register: Any) -> None:
        register("bench_adam", lambda model: torch.optim.Adam(model.parameters(), lr=1e-4))


ASYNC_RECIPE = """\
[run]
name = "async"
device = "{device}"
max_steps = {steps}
num_threads = 1
log_every = 10
test = false
save_model = false

[data.train]
dataset = {{ name = "bench_wide" }}
loader = {{ batch_size = 4, shuffle = true }}

[model]
name = "bench_wide"

[task]
name = "bench_regression"

[optimizer]
name = "bench_adam"
{checkpoint}"""


def tensors_of(node: Any) -> list[torch.Tensor]:
    if isinstance(node, torch.Tensor):
        return [node]
    if isinstance(node, dict):
        return [t for value in node.values() for t in tensors_of(value)]
    if isinstance(node, (list, tuple)):
        return [t for value in node for t in tensors_of(value)]
    return []


class HostCopy:
    """The device-to-host copy alone: every tensor of a state into host buffers allocated
    once (pinned for a GPU's tensors), as the stager copies after its first save."""

    def __init__(self) -> None:
        self.buffers: list[torch.Tensor] = []

    def __call__(self, tensors: list[torch.Tensor]) -> None:
        if len(self.buffers) != len(tensors):
            self.buffers = [torch.empty(t.shape, dtype=t.dtype, pin_memory=t.is_cuda) for t in tensors]
        cuda = False
        for tensor, buffer in zip(tensors, self.buffers, strict=True):
            buffer.copy_(tensor, non_blocking=tensor.is_cuda)
            cuda = cuda or tensor.is_cuda
        if cuda:
            torch.cuda.synchronize()


def clocks() -> tuple[float, float]:
    """(wall, CPU time of this thread): the thread's CPU time does not grow while it waits."""
    return time.perf_counter(), time.thread_time()


def bench_async(layers: int, steps: int, every: int, device: str, rounds: int, root: Path) -> dict[str, Any]:
    """Blocked time of asynchronous and synchronous saves, the copy alone at the same steps,
    and the time of the other steps."""
    root.mkdir(parents=True, exist_ok=True)
    components = AsyncComponents(layers, 1024)
    # (wall, thread CPU) per save, the first save of each run apart (it allocates the buffers)
    blocked: dict[str, list[tuple[float, float]]] = {"async": [], "sync": [], "async first": []}
    copies: list[tuple[float, float]] = []
    copies_again: list[tuple[float, float]] = []
    between: dict[str, list[float]] = {"async": [], "sync": [], "none": []}
    original = DefaultCheckpointer.on_end_train_step
    step_ends: list[float] = []
    async_order: list[tuple[str, int]] = []  # the async saves in order, to pair them with their copies
    host_copy = HostCopy()

    @functools.wraps(original)  # keeps its hookimpl marker (trylast)
    def timed_hook(self: DefaultCheckpointer, run: Any, global_step: int) -> None:
        if global_step % every:
            original(self, run, global_step)
            return
        kind = "async" if self.saver.asynchronous else "sync"
        if kind == "async":  # the copy alone, of this very state, right before the save (paired)
            tensors = tensors_of(run.capture_state())
            host_copy(tensors)  # warm: buffers allocated
            for into in (copies, copies_again):  # the second: an A/A control of the pairing
                wall, cpu = clocks()
                host_copy(tensors)
                into.append((time.perf_counter() - wall, time.thread_time() - cpu))
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = clocks()
        original(self, run, global_step)
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        measured = (time.perf_counter() - wall, time.thread_time() - cpu)
        label = "async first" if kind == "async" and global_step == every else kind
        blocked[label].append(measured)
        if kind == "async":
            async_order.append((label, global_step))

    class StepClock:
        @hookimpl(trylast=True)
        def on_end_train_step(self, run: Any, global_step: int) -> None:
            if run.device.type == "cuda":
                torch.cuda.synchronize()
            step_ends.append(time.perf_counter())

    def train(kind: str) -> None:
        table = (
            ""
            if kind == "none"
            else (
                f'\n[checkpoint]\nname = "default"\nevery_n_steps = {every}\nevery_epoch = false\n'
                f"save_last = false\nkeep_last = 1\nasync = {str(kind == 'async').lower()}\n"
            )
        )
        path = root / f"{kind}.toml"
        path.write_text(ASYNC_RECIPE.format(device=device, steps=steps, checkpoint=table), encoding="utf-8")
        manager = PluginManager(use_entry_points=False).load()
        manager.add(runner_checkpoint.plugin, PluginInfo("checkpoint", "runner-checkpoint", "bench"))
        manager.add(components, PluginInfo("bench_async", "bench", "local"))
        manager.add(StepClock(), PluginInfo("bench_clock", "bench", "local"))
        recipe = validate(read_recipe(path), manager.registry, manager.failures)
        step_ends.clear()
        shutil.rmtree(root / "run", ignore_errors=True)
        execute(recipe, manager, root / "run", show_progress=False)
        # Every step but the first two, the save steps and the ones right after them (whichever
        # of the clock and the checkpointer runs first, the save's own time is not counted).
        durations = [b - a for a, b in itertools.pairwise(step_ends)]
        between[kind].extend(d for number, d in enumerate(durations, start=2) if number % every > 1 and number > 2)

    DefaultCheckpointer.on_end_train_step = timed_hook  # type: ignore[method-assign]
    try:
        for index in range(rounds):
            for kind in ("async", "sync", "none") if index % 2 == 0 else ("none", "sync", "async"):
                train(kind)
    finally:
        DefaultCheckpointer.on_end_train_step = original  # type: ignore[method-assign]

    def median(values: list[tuple[float, float]], column: int) -> float:
        return statistics.median(v[column] for v in values)

    # Pairs: the save of each step against the copy taken right before it (first saves left out).
    measured = [i for i, (kind, _) in enumerate(async_order) if kind == "async"]
    pairs = [(blocked["async"][n], copies[i], copies_again[i]) for n, i in enumerate(measured)]
    paired = [b[0] / c[0] for b, c, _ in pairs]
    paired_cpu = [b[1] / c[1] for b, c, _ in pairs]
    control = [a[0] / c[0] for _, c, a in pairs]
    return {
        "state_mb": state_bytes(model_and_adam(layers)) / 1e6,
        "device": device,
        "saves": len(blocked["async"]),
        "copy_s": median(copies, 0),
        "copy_cpu_s": median(copies, 1),
        "blocked_async_s": median(blocked["async"], 0),
        "blocked_async_cpu_s": median(blocked["async"], 1),
        "blocked_async_first_s": median(blocked["async first"], 0),
        "blocked_sync_s": median(blocked["sync"], 0),
        "ratio_paired": statistics.median(paired),
        "ratio_paired_cpu": statistics.median(paired_cpu),
        "control_ratio": statistics.median(control),
        "ratio_of_minima": min(b[0] for b in blocked["async"]) / min(c[0] for c in copies),
        "step_s": {kind: statistics.median(values) for kind, values in between.items()},
        "all": {"blocked": blocked, "copies": copies, "copies_again": copies_again},
    }


# -- 5: FSDP against DDP peak memory per rank ------------------------------------------------


class MemoryReport:
    """Writes this rank's resident memory before training and its peak to ``run_dir/memory-<rank>.json``."""

    def __init__(self) -> None:
        self.before = 0

    def on_begin_train(self, run: Any) -> None:
        self.before = rss_bytes()

    def on_end_train(self, run: Any) -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        path = run.run_dir / f"memory-{run.backend.rank}.json"
        path.write_text(json.dumps({"before_train": self.before, "peak": peak}), encoding="utf-8")


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Layers(torch.nn.Module):
    def __init__(self, layers: int, width: int) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


@hookimpl
def register_models(register: Any) -> None:
    register("bench_layers", lambda layers=8, width=2048: Layers(layers, width))


@hookimpl
def register_datasets(register: Any) -> None:
    register("bench_rows", lambda split="train", width=2048: Wide(64, width))


@hookimpl
def register_tasks(register: Any) -> None:
    register("bench_regression", Regression)


@hookimpl
def register_callbacks(register: Any) -> None:
    register("bench_memory", MemoryReport)


MEMORY_RECIPE = """\
[run]
name = "memory"
device = "cpu"
max_steps = {steps}
log_every = 5
test = false
save_model = false
backend = "{backend}"

[backend]
nproc_per_node = 2
start_method = "fork"
{wrap}
[data.train]
dataset = {{ name = "bench_rows", width = {width} }}
loader = {{ batch_size = 8 }}

[model]
name = "bench_layers"
layers = {layers}
width = {width}

[task]
name = "bench_regression"

[optimizer]
name = "adamw"
lr = 1e-4

[[callbacks]]
name = "bench_memory"
"""


def bench_memory(layers: int, width: int, steps: int, root: Path) -> dict[str, Any]:
    """Peak resident memory of each of 2 ranks, ddp against fsdp (a ``runner run`` each)."""
    root.mkdir(parents=True, exist_ok=True)
    plugin = root / "bench_memory_plugin.py"
    if not plugin.exists():
        plugin.symlink_to(THIS)
    results: dict[str, Any] = {}
    for backend in ("ddp", "fsdp"):
        wrap = 'wrap = ["Linear"]\n' if backend == "fsdp" else ""
        path = root / f"{backend}.toml"
        path.write_text(
            MEMORY_RECIPE.format(backend=backend, wrap=wrap, layers=layers, width=width, steps=steps), encoding="utf-8"
        )
        run_dir = root / backend
        # A fixed mmap threshold: glibc's dynamic one (raised after each large free) keeps
        # freed buffers of up to 32 MB in the heap, and peak RSS would measure that retention.
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "RUNNER_PLUGINS": "ddp,fsdp,models",
            "MALLOC_MMAP_THRESHOLD_": str(1024 * 1024),
        }
        command = [str(Path(sys.executable).with_name("runner")), "run", str(path), "-p", str(plugin)]
        done = subprocess.run(
            [*command, "--run-dir", str(run_dir), "--no-progress"], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"{backend} run failed:\n{done.stderr}")
        ranks = [json.loads((run_dir / f"memory-{rank}.json").read_text()) for rank in (0, 1)]
        results[backend] = ranks
    params = layers * (width * width + width)
    return {"layers": layers, "width": width, "parameters": params, "model_mb": params * 4 / 1e6, "ranks": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and fewer repeats (smoke run)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON to this file")
    parser.add_argument(
        "--only", default="save,resume,async,memory", help="comma-separated sections: save, resume, async, memory"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="for the async section")
    parser.add_argument("--save-every", type=int, default=10, help="async section: steps between saves")
    parser.add_argument("--memory-layers", type=int, default=8, help="memory section: Linear(2048, 2048) layers")
    args = parser.parse_args()
    layers, repeats = (5, 2) if args.quick else (25, args.repeats)
    only = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-", dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp)
        if "save" in only:
            results["save_load"] = bench_save_load(layers, repeats, root / "save")
            shutil.rmtree(root / "save", ignore_errors=True)
        if "resume" in only:
            results["resume"] = bench_resume(100_000 if args.quick else 1_000_000, 1000, root / "resume")
        if "async" in only:
            steps = args.save_every * (2 if args.quick else 5)
            results["async"] = bench_async(
                layers, steps, args.save_every, args.device, 1 if args.quick else 3, root / "async"
            )
            shutil.rmtree(root / "async", ignore_errors=True)
        if "memory" in only:
            memory_layers = 2 if args.quick else args.memory_layers
            results["memory"] = bench_memory(memory_layers, 2048, 5 if args.quick else 10, root / "memory")
    if "save_load" in results:
        print_save_load(results["save_load"], repeats)
    if "resume" in results:
        print_resume(results["resume"])
    if "async" in results:
        print_async(results["async"])
    if "memory" in results:
        print_memory(results["memory"])
    if args.json:
        print(json.dumps(results, indent=2))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2), encoding="utf-8")


def print_save_load(save_load: dict[str, Any], repeats: int) -> None:

    med, low, cpu = save_load["median_s"], save_load["min_s"], save_load["cpu_median_s"]
    print(f"1. save, {save_load['state_mb']:.0f} MB model + Adam state ({repeats} rounds, fsync in both)")
    print("                            wall median  wall min  CPU median (all threads)")
    for name, label in (("torch.save", "torch.save + fsync    "), ("runner save", "runner checkpoint save")):
        print(f"   {label} {med[name]:8.3f} s {low[name]:8.3f} s {cpu[name]:8.3f} s")
    print(
        f"   ratio: median of paired rounds {save_load['save_ratio']:.2f}, of minima "
        f"{save_load['save_ratio_of_minima']:.2f} (target <= {SAVE_TARGET})"
    )
    print("2. load (warm page cache)")
    for name, label in (("torch.load", "torch.load            "), ("runner load", "runner load + verify  ")):
        print(f"   {label} {med[name]:8.3f} s {low[name]:8.3f} s {cpu[name]:8.3f} s")
    print(
        f"   ratio: median of paired rounds {save_load['load_ratio']:.2f}, of minima "
        f"{save_load['load_ratio_of_minima']:.2f} (target <= {LOAD_TARGET})"
    )


def print_resume(resume: dict[str, Any]) -> None:
    print(
        f"3. resume at step {resume['resumed_at_step']} of a {resume['samples']:,}-sample epoch "
        f"(batch {resume['batch_size']}, map-style dataset, no fast path)"
    )
    print(f"   checkpoint read + verify         {resume['read_s'] * 1000:.1f} ms ({resume['checkpoint_mb']:.2f} MB)")
    print(f"   restore start -> first batch     {resume['restore_to_first_batch_s'] * 1000:.1f} ms")
    print(
        f"   overhead beyond the read         {resume['overhead_s'] * 1000:.1f} ms "
        f"(target <= {RESUME_SLACK_S * 1000:.0f} ms)"
    )
    print(
        f"   samples fetched by the resume    {resume['samples_fetched_by_resume']:,} "
        f"(one batch; fetching the skipped ones would take {resume['fetching_skipped_samples_would_take_s']:.1f} s)"
    )


def print_async(result: dict[str, Any]) -> None:
    step = result["step_s"]
    ms = {k: v * 1000 for k, v in result.items() if isinstance(v, float) and k.endswith("_s")}
    print(
        f"4. asynchronous saves, {result['state_mb']:.0f} MB model + Adam state on {result['device']}, "
        f"{result['saves']} saves measured (wall median; CPU time of the training thread)"
    )
    print(f"   device-to-host copy alone, same state  {ms['copy_s']:8.1f} ms   {ms['copy_cpu_s']:8.1f} ms CPU")
    print(
        f"   step blocked by an async save          {ms['blocked_async_s']:8.1f} ms   "
        f"{ms['blocked_async_cpu_s']:8.1f} ms CPU   (first save of a run: {ms['blocked_async_first_s']:.1f} ms, "
        "it allocates the host buffers)"
    )
    print(f"   step blocked by a synchronous save     {ms['blocked_sync_s']:8.1f} ms")
    print(
        f"   blocked / copy: median of paired saves {result['ratio_paired']:.2f} "
        f"(CPU {result['ratio_paired_cpu']:.2f}), of minima {result['ratio_of_minima']:.2f} "
        f"(target <= {ASYNC_TARGET}); A/A: the copy again / the copy {result['control_ratio']:.2f}"
    )
    print(
        f"   other steps: {step['none'] * 1000:.1f} ms without saves, {step['async'] * 1000:.1f} ms while "
        f"async writes run, {step['sync'] * 1000:.1f} ms with synchronous saves"
    )


def print_memory(result: dict[str, Any]) -> None:
    print(
        f"5. peak resident memory per rank, 2 processes (gloo), {result['layers']} x Linear({result['width']}, "
        f"{result['width']}) = {result['parameters'] / 1e6:.1f}M parameters ({result['model_mb']:.0f} MB fp32), AdamW"
    )
    for backend, ranks in result["ranks"].items():
        cells = ", ".join(
            f"rank {rank}: {r['peak'] / 1e6:.0f} MB peak ({r['before_train'] / 1e6:.0f} MB before training)"
            for rank, r in enumerate(ranks)
        )
        print(f"   {backend:<5} {cells}")
    ddp, fsdp = (max(r["peak"] for r in result["ranks"][b]) for b in ("ddp", "fsdp"))
    print(f"   fsdp / ddp peak: {fsdp / ddp:.2f} ({(ddp - fsdp) / 1e6:.0f} MB less per rank)")


if __name__ == "__main__":
    main()
