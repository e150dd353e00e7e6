"""Per-step overhead of the runner engine against a hand-written torch loop.

Same model (MLP 64→256→10), data (in-memory random tensors), batch size, loss and
optimizer on both sides, one thread, in one process. The engine goes through the real
path: local plugin (``bench_plugin.py``) → ``read_recipe`` → ``validate`` → ``execute``;
its time is taken inside the run, from ``on_begin_train`` to ``on_end_train``.

1. End to end: the variants (hand, hand again as an A/A noise control, engine with
   log_every=10 and 1000) run interleaved, the order rotating every round; the table
   reports medians over rounds and paired (same-round) ratios. Runs are short and many,
   so bursts of load from other processes hit single runs, which the medians discard.
2. Fixed costs in isolation, which the end-to-end noise hides: the engine's per-step
   bookkeeping (a null workload whose loss and optimizer do nothing, against the same
   hand-written loop) and one call of ``Trainer.log_train`` on a live run; minimum of
   many short repeats, as for any microbenchmark.

    .venv/bin/python bench/step_overhead.py            # ~1-2 minutes on 2 cores
    .venv/bin/python bench/step_overhead.py --quick    # smoke run, ~10 s
    .venv/bin/python bench/step_overhead.py --profile  # plus cProfile of one engine run

Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_plugin

import runner
from runner import Recipe
from runner._engine.run import execute
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

TARGET_RATIO = 1.05
SEED = 0
IN_FEATURES, NUM_CLASSES, DATA_SEED = 64, 10, 1234
NEVER = 10**9  # log_every that never logs

RECIPE = """\
[run]
name = "step-overhead"
seed = {seed}
max_steps = {steps}
device = "cpu"
log_every = {log_every}
test = false
save_model = false

[data.train.dataset]
name = "bench_blobs"
n = {n}
in_features = {in_features}
num_classes = {num_classes}
data_seed = {data_seed}

[data.train.loader]
batch_size = {batch_size}
shuffle = true

{components}
"""

MLP_COMPONENTS = """\
[model]
name = "bench_mlp"
hidden = {hidden}

[task]
name = "bench_ce"

[optimizer]
name = "bench_opt"
kind = "{optimizer}"
lr = {lr}
"""

NULL_COMPONENTS = """\
[model]
name = "bench_null_model"

[task]
name = "bench_null_task"

[optimizer]
name = "bench_null_opt"
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=250, help="optimizer steps per measured run (default 250)")
    parser.add_argument("--repeats", type=int, default=41, help="interleaved measured rounds (default 41)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first (default 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n", type=int, default=8192, help="samples in the dataset (default 8192)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument(
        "--log-every", type=int, nargs="+", default=[10, 1000], help="engine variants to run (default: 10 1000)"
    )
    parser.add_argument("--null-steps", type=int, default=5000, help="steps per null-workload run (default 5000)")
    parser.add_argument("--null-repeats", type=int, default=21, help="null-workload rounds (default 21)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 steps x 5 rounds, small null runs")
    parser.add_argument("--profile", action="store_true", help="also cProfile one engine run and print the top entries")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 100, 5, 1
        args.null_steps, args.null_repeats = 2000, 5
    return args


class Timing(NamedTuple):
    """One measured run: wall clock and CPU time of the training thread (seconds or µs/step)."""

    wall: float
    cpu: float


class Clock:
    """Starts both clocks; ``stop()`` returns the elapsed :class:`Timing`."""

    def __init__(self) -> None:
        self.cpu = time.thread_time()
        self.wall = time.perf_counter()

    def stop(self) -> Timing:
        wall = time.perf_counter() - self.wall
        return Timing(wall, time.thread_time() - self.cpu)


# -- the hand-written side -------------------------------------------------------------------


def hand_loop(args: argparse.Namespace, steps: int) -> tuple[Timing, torch.nn.Module]:
    """The minimal correct loop: shuffle per epoch, slice, forward, loss, step."""
    torch.manual_seed(SEED)  # what the engine's seed_everything does before building the model
    features, labels = bench_plugin.make_tensors(args.n, IN_FEATURES, NUM_CLASSES, DATA_SEED)
    model = bench_plugin.make_mlp(IN_FEATURES, args.hidden, NUM_CLASSES)
    optimizer = bench_plugin.make_optimizer(model, args.optimizer, args.lr)
    # The engine's sampler seeds epoch e with seed * 1_000_003 + e; the same seed here
    # makes the first epoch's order identical (later epochs differ, at no cost difference).
    generator = torch.Generator().manual_seed(SEED * 1_000_003)
    n, batch_size = len(features), args.batch_size
    model.train()
    done = 0
    clock = Clock()
    while done < steps:
        perm = torch.randperm(n, generator=generator)
        for begin in range(0, n, batch_size):
            index = perm[begin : begin + batch_size]
            x, y = features[index], labels[index]
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return clock.stop(), model


def hand_null_loop(args: argparse.Namespace, steps: int) -> Timing:
    """The same loop on the null workload: batches are real, loss and optimizer do nothing."""
    features, labels = bench_plugin.make_tensors(args.n, IN_FEATURES, NUM_CLASSES, DATA_SEED)
    optimizer = bench_plugin.NullOptimizer()
    generator = torch.Generator().manual_seed(SEED * 1_000_003)
    n, batch_size = len(features), args.batch_size
    done = 0
    clock = Clock()
    while done < steps:
        perm = torch.randperm(n, generator=generator)
        for begin in range(0, n, batch_size):
            index = perm[begin : begin + batch_size]
            batch = features[index], labels[index]
            loss = bench_plugin.null_step(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    return clock.stop()


# -- the engine side ---------------------------------------------------------------------------


class Engine:
    """Writes recipes to a temporary directory and runs them through ``runner._engine.run.execute``."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.plugins = PluginManager(local_plugins=["bench_plugin"], use_entry_points=False).load()
        self.runs = 0

    def recipe(self, steps: int, log_every: int, null: bool) -> Recipe:
        args = self.args
        path = self.workdir / f"bench-{'null' if null else 'mlp'}-{steps}-{log_every}.toml"
        if not path.exists():
            components = NULL_COMPONENTS if null else MLP_COMPONENTS.format(**vars(args))
            text = RECIPE.format(
                seed=SEED,
                steps=steps,
                log_every=log_every,
                n=args.n,
                in_features=IN_FEATURES,
                num_classes=NUM_CLASSES,
                data_seed=DATA_SEED,
                batch_size=args.batch_size,
                components=components,
            )
            path.write_text(text, encoding="utf-8")
        source = read_recipe(path)
        return validate(source, self.plugins.registry, self.plugins.failures)

    def run(self, steps: int, log_every: int, null: bool = False) -> tuple[Timing, torch.nn.Module]:
        recipe = self.recipe(steps, log_every, null)
        self.runs += 1
        bench_plugin.TIMES.clear()
        result = execute(recipe, self.plugins, self.workdir / f"run-{self.runs}", show_progress=False)
        times = bench_plugin.TIMES
        if result.global_step != steps or times.get("steps") != steps:
            raise RuntimeError(f"engine ran {result.global_step} steps, expected {steps}")
        timing = Timing(times["end"] - times["begin"], times["end_cpu"] - times["begin_cpu"])
        return timing, bench_plugin.LAST_MODEL.pop("model")


# -- end to end ----------------------------------------------------------------------------------


def check_equivalence(args: argparse.Namespace, engine: Engine) -> str:
    """Both sides must train the same model on the same batches: compare within the first epoch."""
    steps = min(50, args.n // args.batch_size)
    _, hand_model = hand_loop(args, steps)
    _, engine_model = engine.run(steps, 10)
    worst = max(
        (a - b).abs().max().item()
        for a, b in zip(hand_model.state_dict().values(), engine_model.state_dict().values(), strict=True)
    )
    verdict = "same parameters" if worst < 1e-5 else "PARAMETERS DIFFER"
    return f"{verdict} after {steps} steps (max |diff| {worst:.1e})"


def interleave(variants: dict[str, Callable[[], Timing]], rounds: int, warmup: int) -> dict[str, list[Timing]]:
    """Run every variant once per round, rotating the order; keep the rounds after ``warmup``."""
    names = list(variants)
    results: dict[str, list[Timing]] = {name: [] for name in names}
    for round_index in range(warmup + rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            timing = variants[name]()
            if round_index >= warmup:
                results[name].append(timing)
    return results


def per_step(timing: Timing, steps: int) -> Timing:
    return Timing(timing.wall / steps * 1e6, timing.cpu / steps * 1e6)


def measure(args: argparse.Namespace, engine: Engine) -> dict[str, list[Timing]]:
    """µs per step (wall, thread CPU) of every variant, one value per measured round."""
    steps = args.steps
    variants: dict[str, Callable[[], Timing]] = {
        "hand": lambda: per_step(hand_loop(args, steps)[0], steps),
        "hand again (A/A)": lambda: per_step(hand_loop(args, steps)[0], steps),
    }
    for log_every in args.log_every:
        variants[f"engine log_every={log_every}"] = lambda k=log_every: per_step(engine.run(steps, k)[0], steps)
    return interleave(variants, args.repeats, args.warmup)


def table(results: dict[str, list[Timing]], clock: str) -> dict[str, float]:
    """Print one clock's table; return each variant's median."""
    values = {name: [getattr(t, clock) for t in timings] for name, timings in results.items()}
    hand = values["hand"]
    hand_median = statistics.median(hand)
    header = (
        f"{clock + ' us/step':<24} {'median':>9} {'min':>9} {'max':>9} {'ratio':>7} {'paired':>7} {'min/min':>7}"
        f" {'+us/step':>9}"
    )
    print(header)
    print("-" * len(header))
    medians = {}
    for name, series in values.items():
        median = medians[name] = statistics.median(series)
        paired_ratio = statistics.median(v / h for v, h in zip(series, hand, strict=True))
        paired_diff = statistics.median(v - h for v, h in zip(series, hand, strict=True))
        print(
            f"{name:<24} {median:>9.1f} {min(series):>9.1f} {max(series):>9.1f} {median / hand_median:>6.3f}x"
            f" {paired_ratio:>6.3f}x {min(series) / min(hand):>6.3f}x {paired_diff:>+9.1f}"
        )
    return medians


# -- fixed costs in isolation --------------------------------------------------------------------


def log_train_cost(engine: Engine, number: int = 100, repeats: int = 15) -> float:
    """µs per call of ``Trainer.log_train`` (10 pending losses) on a live run, minimum of ``repeats``."""
    measured: list[float] = []

    def probe(run: runner.RunContext) -> None:
        trainer = run.services.trainer  # type: ignore[union-attr]  # the engine behind the context (private)
        out = runner.StepOutput(torch.tensor(2.3), {}, 64)
        pending = [torch.tensor(2.3 + i / 100) for i in range(10)]
        seconds = min(timeit.repeat(lambda: trainer.log_train(out, list(pending)), number=number, repeat=repeats))
        measured.append(seconds / number * 1e6)

    bench_plugin.PROBES.append(probe)
    engine.run(20, 10)
    return measured[0]


def fixed_costs(args: argparse.Namespace, engine: Engine, hand_step_us: float) -> None:
    """Print the engine's per-step bookkeeping and log_train cost; project them on ``hand_step_us``."""
    steps = args.null_steps
    null = interleave(
        {
            "hand": lambda: per_step(hand_null_loop(args, steps), steps),
            "engine": lambda: per_step(engine.run(steps, NEVER, null=True)[0], steps),
        },
        args.null_repeats,
        1,
    )
    hand_null = min(t.cpu for t in null["hand"])
    engine_null = min(t.cpu for t in null["engine"])
    bookkeeping = engine_null - hand_null
    log_call = log_train_cost(engine)
    print(
        f"fixed costs in isolation (thread CPU time, minimum of {args.null_repeats} interleaved runs of {steps} steps):"
    )
    print(
        f"  null workload (real batches, no-op loss/optimizer): hand {hand_null:.2f} us/step, engine "
        f"{engine_null:.2f} us/step -> engine bookkeeping {bookkeeping:+.2f} us/step"
    )
    print(f"  Trainer.log_train with 10 pending losses: {log_call:.1f} us per call (minimum of 15 x 100 calls)")
    for log_every in args.log_every:
        fixed = bookkeeping + log_call / log_every
        print(
            f"  log_every={log_every}: fixed overhead {fixed:.2f} us/step"
            f" = {bookkeeping:.2f} + {log_call:.1f}/{log_every}"
            f" -> projected ratio {(hand_step_us + fixed) / hand_step_us:.3f}x"
            f" on the best hand step ({hand_step_us:.0f} us)"
        )


def profile_engine(args: argparse.Namespace, engine: Engine, log_every: int) -> None:
    """cProfile one engine run (profiling inflates Python costs: read it for shares, not times)."""
    steps = max(args.steps, 2000)
    profiler = cProfile.Profile()
    profiler.enable()
    engine.run(steps, log_every)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("tottime")
    stats.print_stats(25)
    print(f"\ncProfile of one engine run, log_every={log_every}, {steps} steps (top 25 by own time):")
    print("\n".join(line for line in stream.getvalue().splitlines() if line.strip()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        engine = Engine(args, Path(tmp))
        equivalence = check_equivalence(args, engine)
        load_before = os.getloadavg()[0]
        results = measure(args, engine)
        load_after = os.getloadavg()[0]
        print(
            f"step overhead: MLP {IN_FEATURES}-{args.hidden}-{NUM_CLASSES}, batch {args.batch_size}, {args.n} samples, "
            f"{args.optimizer}, {args.steps} steps x {args.repeats} interleaved rounds, torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s), runner {runner.__version__}"
        )
        print(f"check: {equivalence}; 1-min load average {load_before:.2f} before, {load_after:.2f} after")
        wall = table(results, "wall")
        print()
        table(results, "cpu")
        print(
            "ratio = median / hand median; paired = median over rounds of variant/hand in the same round; "
            "min/min = best run / best hand run;\n+us/step = median paired difference; cpu = thread CPU time; "
            "'hand again (A/A)' shows the noise floor of these ratios."
        )
        for name, median in wall.items():
            if name.startswith("engine"):
                ratio = median / wall["hand"]
                verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
                print(f"  {name}: wall {ratio:.3f}x {verdict} the {TARGET_RATIO:.2f}x target")
        print()
        fixed_costs(args, engine, min(t.cpu for t in results["hand"]))
        if args.profile:
            profile_engine(args, engine, args.log_every[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
