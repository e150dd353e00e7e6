"""Step time of runner's ``ddp`` (or ``fsdp``) backend against a hand-written DistributedDataParallel
(or ``fully_shard``) loop.

Both sides train the same workload in the same number of processes, started the same way
(torch's elastic launcher, the same start method), on the same data, model, batch size per
rank, loss and optimizer:

* ``hand``: the minimal correct DDP loop in each worker: ``init_process_group``, the
  model wrapped in ``DistributedDataParallel`` (``--backend fsdp``: each ResNet block,
  then the model, sharded with ``fully_shard``), each rank taking positions ``r, r + W, ...``
  of a seeded permutation of in-memory tensors, forward (under autocast with
  ``--precision bf16``), ``zero_grad``, ``backward``, ``step``.
* ``runner``: ``runner._engine.run.execute`` on a recipe with ``[run] backend = "ddp"`` (or
  ``"fsdp"`` with ``wrap = ["Block"]``),
  through the real path (this file is also the local plugin that registers the
  components; workers load it again by path).
* ``runner, no agreement``: the same without the core's per-step signal agreement (the
  asynchronous all-reduce of a "did any rank get SIGINT/SIGTERM?" flag), to measure it.

Each worker times its own steps from the end of step ``--warmup`` to the end of the last
step (synchronising CUDA first), so process start-up, rendezvous, building and the first
steps are excluded; rank 0's time is reported. ``hand again`` repeats ``hand`` as an A/A
control: its ratio is the noise floor. Variants run interleaved, one launch of each per
round with the order rotating; the table shows medians over rounds.

    .venv/bin/python bench/ddp.py                    # CPU, gloo, 2 processes, tiny MLP (~2-4 min on 2 cores)
    .venv/bin/python bench/ddp.py --quick            # smoke run
    .venv/bin/python bench/ddp.py --device cuda --precision bf16 --workload resnet   # GPU check (NCCL)
    .venv/bin/python bench/ddp.py --device cuda --precision bf16 --workload mlp
    .venv/bin/python bench/ddp.py --device cuda --precision bf16 --workload resnet --backend fsdp --nproc 1

Targets (GPU, NCCL): runner / hand <= 1.02 for the ResNet-sized workload, <= 1.05 for the
tiny MLP. Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from runner import hookimpl

THIS = Path(__file__).resolve()
#: ``--variants`` names and the rows they print.
VARIANTS = {"hand": "hand", "runner": "runner", "noagree": "runner, no agreement", "aa": "hand again (A/A)"}
TARGETS = {"resnet": 1.02, "mlp": 1.05}
IN_FEATURES, NUM_CLASSES, DATA_SEED, SEED = 64, 10, 1234, 0


# -- the workload, shared by both sides ------------------------------------------------------


def make_data(workload: str, n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(DATA_SEED)
    shape = (n, IN_FEATURES) if workload == "mlp" else (n, 3, size, size)
    return torch.randn(*shape, generator=generator), torch.randint(0, NUM_CLASSES, (n,), generator=generator)


class Block(torch.nn.Module):
    """ResNet basic block."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.skip: torch.nn.Module = torch.nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = torch.nn.Sequential(
                torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.skip(x))


def make_model(workload: str) -> torch.nn.Module:
    """``mlp``: 64 -> 256 -> 10. ``resnet``: ResNet-18 for small images (11M parameters; any size:
    the pooling is adaptive)."""
    torch.manual_seed(SEED)
    if workload == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(IN_FEATURES, 256), torch.nn.ReLU(), torch.nn.Linear(256, NUM_CLASSES)
        )
    layers: list[torch.nn.Module] = [
        torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False),
        torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(),
    ]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(512, NUM_CLASSES)]
    return torch.nn.Sequential(*layers)


def make_optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


# -- the hand-written loop ----------------------------------------------------------------------


def hand_worker(cfg: dict[str, Any]) -> dict[str, float]:
    """One rank of the hand-written DDP loop (started by the elastic launcher)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    cuda = cfg["device"] == "cuda"
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    x, y = make_data(cfg["workload"], cfg["n"], cfg["image_size"])
    model = make_model(cfg["workload"]).to(device)
    if cfg["backend"] == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (world,))
        for module in model.modules():
            if isinstance(module, Block):
                fully_shard(module, mesh=mesh)
        fully_shard(model, mesh=mesh)
    else:
        model = DistributedDataParallel(model, device_ids=[local] if cuda else None)
    optimizer = make_optimizer(model)
    dtype = torch.bfloat16 if cfg["precision"] == "bf16" else None
    batch, steps, warmup = cfg["batch_size"], cfg["steps"], cfg["warmup"]
    step, epoch, started = 0, 0, 0.0
    while step < steps:
        order = torch.randperm(cfg["n"], generator=torch.Generator().manual_seed(SEED * 1_000_003 + epoch))
        mine = order[rank::world]
        for begin in range(0, len(mine) - batch + 1, batch):
            index = mine[begin : begin + batch]
            xb, yb = x[index].to(device, non_blocking=True), y[index].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step == warmup:
                if cuda:
                    torch.cuda.synchronize()
                started = time.perf_counter()
            if step == steps:
                break
        epoch += 1
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    dist.destroy_process_group()
    return {"us_per_step": elapsed / (steps - warmup) * 1e6}


def run_hand(cfg: dict[str, Any]) -> float:
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=cfg["nproc"],
        run_id=f"hand-{time.time_ns()}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method=cfg["start_method"],
    )
    results = elastic_launch(config, hand_worker)(cfg)
    return float(results[0]["us_per_step"])


# -- the runner side: this file is also its local plugin --------------------------------------


class Timer:
    """Times steps ``warmup``..``steps`` in every rank; rank 0 writes ``run_dir/time.json``.

    ``agreement = false`` replaces the core's per-step signal agreement (one asynchronous
    all-reduce of a flag, read a step later) by the local flag, in this worker process
    only, to measure what the agreement costs.
    """

    def __init__(self, warmup: int, steps: int, agreement: bool = True, ctx: Any = None) -> None:
        self.warmup, self.steps, self.started = warmup, steps, 0.0
        if not agreement:
            from runner._engine import signals

            signals._Agreement.__call__ = lambda self, local: local  # type: ignore[method-assign]

    def on_end_train_step(self, run: Any, global_step: int) -> None:
        if global_step in (self.warmup, self.steps) and run.device.type == "cuda":
            torch.cuda.synchronize()
        if global_step == self.warmup:
            self.started = time.perf_counter()
        elif global_step == self.steps and run.is_primary:
            elapsed = time.perf_counter() - self.started
            (run.run_dir / "time.json").write_text(
                json.dumps({"us_per_step": elapsed / (self.steps - self.warmup) * 1e6})
            )


class Blobs(torch.utils.data.TensorDataset):
    def __init__(self, workload: str, n: int, size: int) -> None:
        super().__init__(*make_data(workload, n, size))
        self.meta = {"num_classes": NUM_CLASSES}


class CrossEntropy:
    """The task: cross-entropy of one batch, no metrics."""

    def train_step(self, model: torch.nn.Module, batch: Any, step: Any) -> Any:
        from runner import StepOutput

        inputs, targets = batch
        return StepOutput(loss=F.cross_entropy(model(inputs), targets), count=targets.shape[0])

    def val_step(self, model: torch.nn.Module, batch: Any, step: Any) -> Any:
        return self.train_step(model, batch, step)

    def test_step(self, model: torch.nn.Module, batch: Any, step: Any) -> Any:
        return self.train_step(model, batch, step)

    def forward(self, stage: Any, model: torch.nn.Module, batch: Any, step: Any) -> Any:
        return self.train_step(model, batch, step)


@hookimpl
def register_datasets(register: Any) -> None:
    register("ddpbench_data", lambda workload, n, size=32, split="train": Blobs(workload, n, size))


@hookimpl
def register_models(register: Any) -> None:
    register("ddpbench_model", lambda workload: make_model(workload))


@hookimpl
def register_tasks(register: Any) -> None:
    register("ddpbench_task", lambda: CrossEntropy())


@hookimpl
def register_optimizers(register: Any) -> None:
    register("ddpbench_sgd", lambda model: make_optimizer(model))


@hookimpl
def register_callbacks(register: Any) -> None:
    register("ddpbench_timer", Timer)


RECIPE = """\
[run]
name = "ddp-bench"
seed = {seed}
max_steps = {steps}
device = "{device}"
precision = "{precision}"
backend = "{backend}"
save_model = false
test = false

[backend]
nproc_per_node = {nproc}
start_method = "{start_method}"
{wrap}
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
agreement = {agreement}
"""


def run_runner(cfg: dict[str, Any], root: Path, agreement: bool = True) -> float:
    from runner._engine.run import execute
    from runner._plugins.manager import PluginManager
    from runner._recipe.source import read_recipe
    from runner._recipe.validate import validate

    directory = Path(tempfile.mkdtemp(dir=root))
    path = directory / "recipe.toml"
    wrap = 'wrap = ["Block"]' if cfg["backend"] == "fsdp" and cfg["workload"] == "resnet" else ""
    path.write_text(RECIPE.format(seed=SEED, agreement=str(agreement).lower(), wrap=wrap, **cfg), encoding="utf-8")
    # This file is the local plugin, under another name than the installed "ddp" plugin.
    plugin = root / "ddp_bench.py"
    if not plugin.exists():
        plugin.symlink_to(THIS)
    manager = PluginManager(local_plugins=[str(plugin)]).load()
    recipe = validate(read_recipe(path), manager.registry, manager.failures)
    execute(recipe, manager, directory / "run", show_progress=False)
    return float(json.loads((directory / "run" / "time.json").read_text())["us_per_step"])


# -- driver ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["mlp", "resnet"], default="mlp")
    parser.add_argument("--backend", choices=["ddp", "fsdp"], default="ddp")
    parser.add_argument("--image-size", type=int, default=32, help="resnet: image side (default 32)")
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the medians (us/step) to this file")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--nproc", type=int, default=0, help="processes (default: GPUs on CUDA, 2 on CPU)")
    parser.add_argument("--batch-size", type=int, default=0, help="per rank (default: 64 mlp, 32 resnet)")
    parser.add_argument("--steps", type=int, default=0, help="steps per run (default: 400 mlp, 60 resnet)")
    parser.add_argument("--warmup", type=int, default=0, help="untimed first steps (default: steps / 4)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--start-method", default="", help="default: forkserver on CPU, spawn on CUDA")
    parser.add_argument("--quick", action="store_true", help="one round of few steps (smoke run)")
    args = parser.parse_args()

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available here")
    nproc = args.nproc or (torch.cuda.device_count() if args.device == "cuda" else 2)
    batch = args.batch_size or (64 if args.workload == "mlp" else 32)
    steps = args.steps or (400 if args.workload == "mlp" else 60)
    rounds = args.rounds
    if args.quick:
        steps, rounds = min(steps, 60), 1
    warmup = args.warmup or max(1, steps // 4)
    cfg = {
        "workload": args.workload,
        "backend": args.backend,
        "image_size": args.image_size,
        "device": args.device,
        "precision": args.precision,
        "nproc": nproc,
        "batch_size": batch,
        "steps": steps,
        "warmup": warmup,
        "n": batch * nproc * (steps + 1),  # one epoch holds every step: no epoch boundary in the timing
        "start_method": args.start_method or ("spawn" if args.device == "cuda" else "forkserver"),
    }
    if args.device == "cpu":
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    print(
        f"{args.backend} step time: {args.workload}, {args.device} ({'nccl' if args.device == 'cuda' else 'gloo'}), "
        f"{args.precision}, {nproc} processes x batch {batch}, steps {warmup}..{steps} timed, {rounds} rounds, "
        f"start method {cfg['start_method']}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
        f"torch {torch.__version__}"
    )
    variants = [VARIANTS[name.strip()] for name in args.variants.split(",")]
    times: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as root:
        for number in range(rounds):
            order = variants[number % len(variants) :] + variants[: number % len(variants)]
            for variant in order:
                if variant.startswith("runner"):
                    value = run_runner(cfg, Path(root), agreement=variant == "runner")
                else:
                    value = run_hand(cfg)
                times[variant].append(value)
            print(f"  round {number + 1}: " + ", ".join(f"{v} {times[v][-1]:.0f} us" for v in variants), flush=True)
    hand, hand_min = statistics.median(times["hand"]), min(times["hand"])
    print(f"\n{'variant':<22} {'median us/step':>15} {'min':>10} {'max':>10} {'ratio':>7} {'min/min':>8}")
    for variant in variants:
        values = times[variant]
        median = statistics.median(values)
        row = f"{median:>15.0f} {min(values):>10.0f} {max(values):>10.0f} {median / hand:>7.3f}"
        print(f"{variant:<22} {row} {min(values) / hand_min:>8.3f}")
    if "runner, no agreement" in times:
        paired = [a / b for a, b in zip(times["runner"], times["runner, no agreement"], strict=True)]
        print(
            f"signal agreement: runner / runner without it = {statistics.median(paired):.3f} "
            f"(median of {len(paired)} paired rounds; "
            f"{statistics.median(times['runner']) - statistics.median(times['runner, no agreement']):+.0f} us/step)"
        )
    if args.json is not None:
        medians = {variant: statistics.median(values) for variant, values in times.items()}
        args.json.write_text(json.dumps({"us_per_step": medians, "config": cfg}, indent=2), encoding="utf-8")
    target = TARGETS[args.workload]
    ratio = statistics.median(times["runner"]) / hand
    print(f"\nrunner / hand = {ratio:.3f} (target <= {target} on GPU with NCCL; the A/A row is the noise floor)")


if __name__ == "__main__":
    main()
