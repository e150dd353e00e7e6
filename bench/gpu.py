"""GPU numbers in one prepared run (about 8 minutes on one H100): runner against a
hand-written loop and Lightning, the NCCL path of runner-ddp, FSDP2, torch.compile and
asynchronous checkpoints. ``bench/gpu.sh`` runs it; it writes a Markdown table and JSON.

Sections, in order of priority (each has a time budget; a section that would start past
the overall deadline is skipped and the table says so):

1. ``step``: one GPU, one process, this process. Workloads of ``bench/ddp.py``: ``mlp``
   (64 -> 256 -> 10, batch 64, fp32) and ``resnet`` (ResNet-18 on 64x64 images, batch
   256, bf16 autocast); SGD with momentum, in-memory data indexed by a seeded permutation
   on the host. Variants: ``hand`` (the minimal correct loop), ``runner``
   (``runner._engine.run.execute``, backend ``single``; ``bench/ddp.py`` is the local
   plugin) and ``lightning`` (a ``LightningModule`` and ``Trainer``, logging, checkpointing,
   progress bar and model summary off; skipped with a note when ``lightning`` cannot be
   imported), interleaved over rounds; each times steps ``warmup``..``steps`` with CUDA
   synchronised at both ends.
2. ``ddp``: ``bench/ddp.py --nproc 1`` (runner's ``ddp`` backend on NCCL against a
   hand-written ``DistributedDataParallel`` loop), both workloads.
3. ``fsdp``: ``bench/ddp.py --backend fsdp --nproc 1`` (runner's ``fsdp`` backend against
   a hand-written ``fully_shard`` loop), both workloads.
4. ``async``: ``bench/checkpoint.py --only async --device cuda``: the step blocked by an
   asynchronous save against the device-to-host copy of the same state into pinned memory.
5. ``compile``: section 1's hand and runner variants with ``torch.compile``
   (``model.compile()`` in the hand loop, ``[run] compile = true`` in the recipe); the
   first ``warmup`` steps pay the compilation.

    .venv/bin/python bench/gpu.py --out results/            # on a GPU machine (bench/gpu.sh)
    .venv/bin/python bench/gpu.py --device cpu --quick      # smoke run of every code path, no GPU

Targets (one H100): runner / hand <= 1.03 on the MLP and <= 1.01 on ResNet-18 (Lightning
was measured at 1.57 and 1.10 there); async blocked time <= 1.1x the device-to-host copy.
Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ddp as workloads  # noqa: E402 (bench/ddp.py: models, data and the runner plugin)

TARGETS = {"mlp": 1.03, "resnet": 1.01}
LIGHTNING_MEASURED = {"mlp": 1.57, "resnet": 1.10}
WORKLOADS: dict[str, dict[str, Any]] = {
    "mlp": {"batch_size": 64, "precision": "fp32", "image_size": 32, "steps": 600, "warmup": 100},
    "resnet": {"batch_size": 256, "precision": "bf16", "image_size": 64, "steps": 120, "warmup": 20},
}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def batches(x: torch.Tensor, y: torch.Tensor, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of a seeded permutation per epoch, forever (the hand loop's and Lightning's data)."""
    epoch = 0
    while True:
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(workloads.SEED * 1_000_003 + epoch))
        for begin in range(0, len(order) - batch + 1, batch):
            index = order[begin : begin + batch]
            yield x[index], y[index]
        epoch += 1


# -- hand-written loop -------------------------------------------------------------------------


def hand(workload: str, cfg: dict[str, Any], device: torch.device, compiled: bool) -> float:
    """µs per step of the minimal correct loop."""
    x, y = workloads.make_data(workload, cfg["n"], cfg["image_size"])
    torch.manual_seed(workloads.SEED)
    model = workloads.make_model(workload).to(device)
    if compiled:
        model.compile()
    optimizer = workloads.make_optimizer(model)
    dtype = torch.bfloat16 if cfg["precision"] == "bf16" else None
    started = 0.0
    for step, (xb, yb) in enumerate(batches(x, y, cfg["batch_size"]), start=1):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == cfg["warmup"]:
            synchronize(device)
            started = time.perf_counter()
        if step == cfg["steps"]:
            break
    synchronize(device)
    return (time.perf_counter() - started) / (cfg["steps"] - cfg["warmup"]) * 1e6


# -- runner ----------------------------------------------------------------------------------------

RECIPE = """\
[run]
name = "gpu-bench"
seed = {seed}
max_steps = {steps}
device = "{device}"
precision = "{precision}"
compile = {compile}
save_model = false
test = false

[data.train]
dataset = {{ name = "ddpbench_data", workload = "{workload}", n = {n}, size = {image_size} }}
loader = {{ batch_size = {batch_size}, shuffle = true, drop_last = true }}

[model]
name = "ddpbench_model"
workload = "{workload}"

[task]
name = "ddpbench_task"

[optimizer]
name = "ddpbench_sgd"

[[callbacks]]
name = "ddpbench_timer"
warmup = {warmup}
steps = {steps}
"""


def runner_run(workload: str, cfg: dict[str, Any], device: torch.device, compiled: bool, root: Path) -> float:
    """µs per step of ``runner`` on the same workload (timed inside the run by bench/ddp.py's Timer)."""
    from runner._engine.run import execute
    from runner._plugins.manager import PluginManager
    from runner._recipe.source import read_recipe
    from runner._recipe.validate import validate

    directory = Path(tempfile.mkdtemp(dir=root))
    text = RECIPE.format(
        seed=workloads.SEED, device=device.type, compile=str(compiled).lower(), workload=workload, **cfg
    )
    (directory / "recipe.toml").write_text(text, encoding="utf-8")
    plugin = root / "gpu_bench_plugin.py"  # bench/ddp.py, under a name of its own
    if not plugin.exists():
        plugin.symlink_to(HERE / "ddp.py")
    manager = PluginManager(local_plugins=[str(plugin)], use_entry_points=False).load()
    recipe = validate(read_recipe(directory / "recipe.toml"), manager.registry, manager.failures)
    execute(recipe, manager, directory / "run", show_progress=False)
    return float(json.loads((directory / "run" / "time.json").read_text())["us_per_step"])


# -- Lightning ---------------------------------------------------------------------------------------


def lightning_available() -> str | None:
    """None when Lightning imports, else why not."""
    try:
        import lightning  # noqa: F401
    except Exception as exc:  # not installed, or broken
        return f"{type(exc).__name__}: {exc}"
    return None


def lightning_run(workload: str, cfg: dict[str, Any], device: torch.device) -> float:
    """µs per step of a LightningModule trained by ``lightning.Trainer`` on the same data."""
    import lightning as L

    x, y = workloads.make_data(workload, cfg["n"], cfg["image_size"])
    torch.manual_seed(workloads.SEED)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = workloads.make_model(workload)

        def training_step(self, batch: Any, index: int) -> torch.Tensor:
            inputs, targets = batch
            return F.cross_entropy(self.model(inputs), targets)

        def configure_optimizers(self) -> Any:
            return workloads.make_optimizer(self.model)

    class Batches(torch.utils.data.IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
        def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            return batches(x, y, cfg["batch_size"])

    times: dict[str, float] = {}

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, index: int) -> None:
            step = trainer.global_step
            if step in (cfg["warmup"], cfg["steps"]):
                synchronize(device)
                times[str(step)] = time.perf_counter()

    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_steps=cfg["steps"],
        precision="bf16-mixed" if cfg["precision"] == "bf16" else "32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Timer()],
    )
    loader = torch.utils.data.DataLoader(Batches(), batch_size=None)
    trainer.fit(Module(), loader)
    return (times[str(cfg["steps"])] - times[str(cfg["warmup"])]) / (cfg["steps"] - cfg["warmup"]) * 1e6


# -- sections ------------------------------------------------------------------------------------------


def interleaved(variants: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each variant once per round, the order rotating; µs per step of every run."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            times[name].append(variants[name]())
        print(f"    round {number + 1}: " + ", ".join(f"{n} {times[n][-1]:.0f} us" for n in names), flush=True)
    return times


def step_section(args: argparse.Namespace, root: Path, compiled: bool) -> dict[str, Any]:
    device = torch.device(args.device)
    results: dict[str, Any] = {}
    missing = lightning_available()
    for workload, base in WORKLOADS.items():
        cfg = dict(base, n=base["batch_size"] * (base["steps"] + 1))
        if args.quick:  # every code path, in seconds (bf16 convolutions crawl on a CPU)
            cfg.update(steps=8, warmup=3, batch_size=4, image_size=32, precision="fp32")
            cfg["n"] = cfg["batch_size"] * 9
        variants: dict[str, Callable[[], float]] = {
            "hand": lambda w=workload, c=cfg: hand(w, c, device, compiled),
            "runner": lambda w=workload, c=cfg: runner_run(w, c, device, compiled, root),
        }
        if not compiled and missing is None:
            variants["lightning"] = lambda w=workload, c=cfg: lightning_run(w, c, device)
        print(f"  {workload}{' (compiled)' if compiled else ''}: {cfg}", flush=True)
        rounds = 1 if args.quick else (2 if compiled else args.rounds)
        times = interleaved(variants, rounds)
        medians = {name: statistics.median(values) for name, values in times.items()}
        results[workload] = {"us_per_step": medians, "runs": times, "config": cfg}
    if not compiled and missing is not None:
        results["lightning_skipped"] = missing
    return results


def subprocess_section(command: list[str], output: Path, timeout: float) -> dict[str, Any]:
    """Run another benchmark script with ``--json``-style output into ``output``; its results."""
    print(f"  $ {' '.join(command)}", flush=True)
    try:
        done = subprocess.run(command, timeout=timeout, text=True, capture_output=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    print("\n".join("    " + line for line in done.stdout.splitlines()[-12:]), flush=True)
    if done.returncode != 0 or not output.exists():
        return {"error": f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or ''}"}
    return dict(json.loads(output.read_text(encoding="utf-8")))


def distributed_section(args: argparse.Namespace, root: Path, backend: str, timeout: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for workload, base in WORKLOADS.items():
        output = root / f"{backend}-{workload}.json"
        size, batch, steps, precision = base["image_size"], base["batch_size"], base["steps"], base["precision"]
        if args.quick:
            size, batch, steps, precision = 32, 4, 6, "fp32"
        command = [sys.executable, str(HERE / "ddp.py"), "--device", args.device, "--nproc", "1"]
        command += ["--backend", backend, "--workload", workload, "--precision", precision]
        command += ["--image-size", str(size), "--batch-size", str(batch), "--steps", str(steps)]
        command += ["--variants", "hand,runner", "--json", str(output)]
        command += ["--rounds", "1" if args.quick else "2"]  # each run launches a process: ~10 s
        results[workload] = subprocess_section(command, output, timeout / 2)
    return results


def async_section(args: argparse.Namespace, root: Path, timeout: float) -> dict[str, Any]:
    output = root / "async.json"
    command = [sys.executable, str(HERE / "checkpoint.py"), "--only", "async", "--device", args.device]
    command += ["--json-out", str(output)] + (["--quick"] if args.quick else [])
    return subprocess_section(command, output, timeout).get("async", {"error": "no async results"})


# -- the table -------------------------------------------------------------------------------------------


def ratio(values: dict[str, float], name: str) -> str:
    if name not in values or "hand" not in values:
        return "-"
    return f"{values[name] / values['hand']:.3f}x"


def table(results: dict[str, Any], header: str) -> str:
    lines = [header, ""]
    step, compiled = results.get("step", {}), results.get("compile", {})
    lines += [
        "| workload | hand us/step | runner us/step | runner / hand | target | Lightning us/step | Lightning / hand |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload in WORKLOADS:
        values = step.get(workload, {}).get("us_per_step", {})
        lightning = f"{values['lightning']:.0f}" if "lightning" in values else "skipped"
        lines.append(
            f"| {workload} | {values.get('hand', float('nan')):.0f} | {values.get('runner', float('nan')):.0f} | "
            f"{ratio(values, 'runner')} | <= {TARGETS[workload]} | {lightning} | {ratio(values, 'lightning')} "
            f"(earlier: {LIGHTNING_MEASURED[workload]}x) |"
        )
    if "lightning_skipped" in step:
        lines += ["", f"Lightning skipped: {step['lightning_skipped']}"]
    group = "NCCL" if results.get("device") == "cuda" else "gloo"
    for name, title in (
        ("ddp", f"runner-ddp, {group}, 1 process"),
        ("fsdp", f"runner-fsdp (FSDP2), {group}, 1 process"),
    ):
        lines += ["", f"{title}:", "", "| workload | hand us/step | runner us/step | runner / hand |"]
        lines += ["| --- | ---: | ---: | ---: |"]
        for workload in WORKLOADS:
            entry = results.get(name, {}).get(workload, {})
            values = entry.get("us_per_step", {})
            if not values:
                lines.append(f"| {workload} | {entry.get('error', 'not run')} | | |")
                continue
            lines.append(f"| {workload} | {values['hand']:.0f} | {values['runner']:.0f} | {ratio(values, 'runner')} |")
    lines += ["", "torch.compile (`[run] compile = true`; hand: `model.compile()`):", ""]
    lines += ["| workload | hand us/step | runner us/step | runner / hand | eager runner / compiled runner |"]
    lines += ["| --- | ---: | ---: | ---: | ---: |"]
    for workload in WORKLOADS:
        values = compiled.get(workload, {}).get("us_per_step", {})
        eager = step.get(workload, {}).get("us_per_step", {}).get("runner")
        if not values:
            lines.append(f"| {workload} | not run | | | |")
            continue
        speedup = f"{eager / values['runner']:.2f}x" if eager else "-"
        lines.append(
            f"| {workload} | {values['hand']:.0f} | {values['runner']:.0f} | {ratio(values, 'runner')} | {speedup} |"
        )
    saves = results.get("async", {})
    lines += ["", "Asynchronous checkpoint (`[checkpoint] async = true`):", ""]
    if "copy_s" in saves:
        into = "into pinned memory" if saves["device"] == "cuda" else "host to host"
        lines += [
            f"- state: {saves['state_mb']:.0f} MB (model + Adam) on {saves['device']}, {saves['saves']} saves",
            f"- device-to-host copy of the same state ({into}): {saves['copy_s'] * 1000:.1f} ms",
            f"- step blocked by an async save: {saves['blocked_async_s'] * 1000:.1f} ms (blocked / copy, "
            f"paired: **{saves['ratio_paired']:.2f}x**, target <= 1.1; A/A {saves['control_ratio']:.2f})",
            f"- step blocked by a synchronous save: {saves['blocked_sync_s'] * 1000:.1f} ms",
        ]
    else:
        lines.append(f"- {saves.get('error', 'not run')}")
    for name in results.get("skipped", []):
        lines.append(f"\nSkipped (over the time budget): {name}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where gpu-results.md/json go")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of section 1 (default 3)")
    parser.add_argument("--budget-s", type=float, default=540, help="start no section after this (default 540)")
    parser.add_argument("--only", default="step,ddp,fsdp,async,compile")
    parser.add_argument("--quick", action="store_true", help="tiny runs of every section (a smoke test)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here (use --device cpu --quick for a smoke run)")
    os.environ.setdefault("OMP_NUM_THREADS", "1" if args.device == "cpu" else "4")
    started = time.monotonic()
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or "cpu"
    header = (
        f"GPU benchmark on {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    if args.quick:
        header += " (--quick: a smoke run, the numbers mean nothing)"
    print(header, flush=True)
    only = args.only.split(",")
    # Section budgets (seconds) on one H100; the compile section last, it compiles 4 models.
    sections: dict[str, Callable[[Path], dict[str, Any]]] = {
        "step": lambda root: step_section(args, root, compiled=False),
        "ddp": lambda root: distributed_section(args, root, "ddp", 150),
        "fsdp": lambda root: distributed_section(args, root, "fsdp", 150),
        "async": lambda root: async_section(args, root, 120),
        "compile": lambda root: step_section(args, root, compiled=True),
    }
    results: dict[str, Any] = {"skipped": [], "device": args.device}
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        for name, section in sections.items():
            if name not in only:
                continue
            if time.monotonic() - started > args.budget_s:
                results["skipped"].append(name)
                continue
            print(f"{name}:", flush=True)
            try:
                results[name] = section(Path(tmp))
            except Exception as exc:  # one section failing leaves the others' numbers
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                print(f"  failed: {type(exc).__name__}: {exc}", flush=True)
    results["seconds"] = time.monotonic() - started
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(results, header)
    (args.out / "gpu-results.md").write_text(text, encoding="utf-8")
    (args.out / "gpu-results.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print("\n" + text)
    print(f"{results['seconds']:.0f} s; written to {args.out / 'gpu-results.md'} and gpu-results.json")


if __name__ == "__main__":
    main()
