"""Intra-op threads and torch.compile, measured through ``runner run``.

Two experiments, each variant a fresh ``runner run`` subprocess (interleaved over rounds,
so a burst of load from other processes hits every variant alike):

* **threads**: ``recipes/sequence.toml`` (the bundled ``rnn`` model, a small GRU over
  padded sequences) with ``[run] num_threads`` = 1, 2, ... and unset (the default, with
  ``OMP_NUM_THREADS`` removed from the environment): training seconds from each run's
  ``summary.json``, and the thread count the default chose.
* **compile**: ``recipes/digits.toml`` (MLP) with ``[run] compile`` false and true, on
  the CPU unless ``--device`` says otherwise: seconds per optimizer step from the
  ``throughput`` callback's windows, the first window (which pays the compilation)
  reported apart. Validation runs only at the end, outside the windows.

    .venv/bin/python bench/threads_compile.py              # ~5-10 min on 2 busy cores
    .venv/bin/python bench/threads_compile.py --quick      # smoke run

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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def runner() -> str:
    found = Path(sys.executable).with_name("runner")
    return str(found) if found.exists() else (shutil.which("runner") or "runner")


def run(recipe: Path, run_dir: Path, overrides: list[str], env: dict[str, str]) -> dict[str, Any]:
    args = [runner(), "run", str(recipe), "--run-dir", str(run_dir), "--no-progress"]
    for override in overrides:
        args += ["-o", override]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    return {"summary": summary, "records": records, "wall": time.perf_counter() - started}


def default_threads() -> str:
    sys.path.insert(0, str(ROOT / "core" / "src"))
    from runner._engine.threads import choose_threads

    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    threads, why = choose_threads(None, world_size=1, loader_workers=0, environ=env)
    return f"{threads} ({why})"


def threads_experiment(args: argparse.Namespace, work: Path) -> None:
    # the recipe sets num_threads = 1; a copy without that line measures the default
    source = ROOT / "recipes" / "sequence.toml"
    recipe = work / "sequence.toml"
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    recipe.write_text("".join(line for line in lines if not line.startswith("num_threads")), encoding="utf-8")
    variants: dict[str, list[str]] = {f"num_threads={n}": [f"run.num_threads={n}"] for n in args.threads}
    variants["default (unset)"] = []
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    extra = ["run.max_steps=40"] if args.quick else []
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            result = run(recipe, work / f"threads-{round_}-{names.index(name)}", [*variants[name], *extra], env)
            seconds[name].append(float(result["summary"]["seconds"]))
            print(f"  round {round_ + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    print(f"\nthreads: recipes/sequence.toml{' (max_steps=40)' if args.quick else ''}, {args.rounds} round(s)")
    print(f"default chose {default_threads()}")
    print("| variant | median s | min s | runs |\n| --- | ---: | ---: | --- |")
    for name, values in seconds.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {shown} |")


def step_times(records: list[dict[str, Any]]) -> list[float]:
    return [float(r["step_time"]) for r in records if r["stage"] == "train" and "step_time" in r]


def compile_experiment(args: argparse.Namespace, work: Path) -> None:
    recipe = ROOT / "recipes" / "digits.toml"
    steps = 100 if args.quick else 400
    window = 25 if args.quick else 50
    common = [
        f"run.max_steps={steps}",
        f"run.log_every={window}",
        f"run.val_every={steps}",
        "run.test=false",
        f"run.device={args.device}",
        'callbacks=[{name = "throughput"}]',
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    variants = {"compile=false": ["run.compile=false"], "compile=true": ["run.compile=true"]}
    first: dict[str, list[float]] = {name: [] for name in variants}
    steady: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for round_ in range(args.rounds):
        order = names[round_ % 2 :] + names[: round_ % 2]
        for name in order:
            result = run(recipe, work / f"compile-{round_}-{names.index(name)}", [*common, *variants[name]], env)
            times = step_times(result["records"])
            first[name].append(times[0])
            steady[name].extend(times[1:])
            print(
                f"  round {round_ + 1}: {name}: first window {times[0] * 1e3:.1f} ms/step, "
                f"then {statistics.median(times[1:]) * 1e3:.2f} ms/step",
                flush=True,
            )
    import torch

    print(
        f"\ncompile: {recipe.relative_to(ROOT)} (MLP 64-256-10, batch 64), {steps} steps in windows of {window}, "
        f"device {args.device}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, torch {torch.__version__}, "
        f"CUDA available: {torch.cuda.is_available()}"
    )
    print("| variant | steady ms/step (median of windows) | min | first window ms/step (compiles) |")
    print("| --- | ---: | ---: | ---: |")
    for name in names:
        print(
            f"| {name} | {statistics.median(steady[name]) * 1e3:.2f} | {min(steady[name]) * 1e3:.2f} | "
            f"{statistics.median(first[name]) * 1e3:.1f} |"
        )
    ratio = statistics.median(steady["compile=true"]) / statistics.median(steady["compile=false"])
    print(f"compiled / eager steady step time: {ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, one round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per experiment (default 3; --quick 1)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="explicit thread counts (default 1 2)")
    parser.add_argument("--only", choices=["threads", "compile"], help="run one experiment")
    parser.add_argument("--device", default="cpu", help="device of the compile experiment (default cpu)")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    print(f"load average: {os.getloadavg()[0]:.1f}, cpus: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        if args.only in (None, "threads"):
            threads_experiment(args, Path(tmp))
        if args.only in (None, "compile"):
            compile_experiment(args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
