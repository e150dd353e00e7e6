"""Cold-start time of the ``runner`` command against the bare imports it cannot avoid.

Each command runs as a fresh subprocess, interleaved (one of each per round, the order
rotating every round), after unmeasured warm-up rounds that fill the bytecode cache;
the table reports the median wall time and the ratio to the baseline
``python -c "import pluggy, attrs, click"``. Then ``python -X importtime`` runs of each
command (median of 5) tell whether torch was imported and which imports beyond the
baseline cost most. ``--callgrind`` adds instruction counts, which machine load does not
change. PYTHONDONTWRITEBYTECODE is dropped from the commands' environment: users'
interpreters cache bytecode.

    .venv/bin/python bench/cold_start.py            # 21 rounds, ~30-60 s on 2 cores
    .venv/bin/python bench/cold_start.py --quick    # smoke run, 5 rounds
    .venv/bin/python bench/cold_start.py --callgrind  # plus instruction counts (needs valgrind)

Benchmarks print results; they never fail on a threshold (exit status is 0).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 150.0
TARGET_RATIO = 1.5
BASELINE = "baseline"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=21, help="measured rounds (default 21, at least 15 advised)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the environment to measure")
    parser.add_argument("--top", type=int, default=12, help="import-time offenders to list (default 12)")
    parser.add_argument("--importtime-runs", type=int, default=5, help="-X importtime runs per command (default 5)")
    parser.add_argument(
        "--env-as-is",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE if set (by default it is dropped so bytecode is cached as for users)",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="also count instructions of one run of each command under valgrind (load-independent, ~2 min)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 rounds, 1 warm-up, 1 importtime run")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup, args.importtime_runs = 5, 1, 1
    return args


def commands(python: str) -> dict[str, list[str]]:
    """Label → argv. ``runner`` is the console script next to the interpreter. The bare
    import of the CLI module separates import time from what the commands then do."""
    script = str(Path(python).parent / "runner")
    return {
        BASELINE: [python, "-c", "import pluggy, attrs, click"],
        "import runner._cli.main": [python, "-c", "import runner._cli.main"],
        "runner --help": [script, "--help"],
        "runner plugins": [script, "plugins"],
    }


def child_env(as_is: bool) -> dict[str, str]:
    """The commands' environment. Users' interpreters cache bytecode, so unless ``as_is``,
    PYTHONDONTWRITEBYTECODE is dropped and the warm-up rounds write the ``.pyc`` files."""
    env = dict(os.environ)
    if not as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_once(argv: list[str], env: dict[str, str]) -> float:
    """Wall milliseconds of one run; a failing command is an error, not a number."""
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = (time.perf_counter() - start) * 1e3
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def measure(cmds: dict[str, list[str]], repeats: int, warmup: int, env: dict[str, str]) -> dict[str, list[float]]:
    names = list(cmds)
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(warmup + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = time_once(cmds[name], env)
            if round_index >= warmup:
                results[name].append(elapsed)
    return results


# -- import-time analysis --------------------------------------------------------------------


def importtime(python: str, argv: list[str], env: dict[str, str]) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, depth, module) for every import of ``argv`` run under ``-X importtime``."""
    if argv[0] != python:  # a console script: run its file with the interpreter
        argv = [python, *argv]
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|", 2)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        rows.append((int(self_us), int(cumulative_us), depth, name.strip()))
    return rows


def with_ancestors(rows: list[tuple[int, int, int, str]]) -> list[tuple[int, str, list[str]]]:
    """(self µs, module, importers outermost first) for every row.

    ``-X importtime`` prints a module after everything it imports, one indentation level
    deeper per nesting: read backwards, the rows come in import order, parents first.
    """
    stack: list[tuple[int, str]] = []
    out = []
    for self_us, _, depth, name in reversed(rows):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        out.append((self_us, name, [n for _, n in stack]))
        stack.append((depth, name))
    return out[::-1]


def is_runner(module: str) -> bool:
    return module == "runner" or module.startswith(("runner.", "runner_"))


def importer_of(chain: list[str], name: str) -> str:
    """The nearest runner module that (indirectly) imported ``name``; "run time" for an
    import made by a function call rather than by another module's import."""
    for module in reversed(chain):
        if is_runner(module):
            return module
    return chain[0] if chain else "run time"


def importtime_median(python: str, argv: list[str], env: dict[str, str], runs: int) -> list[tuple[int, int, int, str]]:
    """:func:`importtime` rows of the first run, with each module's median self and cumulative times over ``runs``."""
    samples = [importtime(python, argv, env) for _ in range(max(runs, 1))]
    by_module: dict[str, list[tuple[int, int]]] = {}
    for rows in samples:
        for self_us, cumulative_us, _, name in rows:
            by_module.setdefault(name, []).append((self_us, cumulative_us))
    return [
        (
            int(statistics.median(s for s, _ in by_module[name])),
            int(statistics.median(c for _, c in by_module[name])),
            depth,
            name,
        )
        for _, _, depth, name in samples[0]
    ]


def report_imports(python: str, cmds: dict[str, list[str]], env: dict[str, str], top: int, runs: int) -> None:
    print(f"-X importtime, median of {runs} runs per command:")
    baseline = {name for _, _, _, name in importtime(python, cmds[BASELINE], env)}
    for label, argv in cmds.items():
        rows = importtime_median(python, argv, env, runs)
        total_ms = sum(r[0] for r in rows) / 1e3
        extra = [(self_us, name, chain) for self_us, name, chain in with_ancestors(rows) if name not in baseline]
        extra_ms = sum(r[0] for r in extra) / 1e3
        torch_rows = [(self_us, name, chain) for self_us, name, chain in with_ancestors(rows) if name == "torch"]
        if torch_rows:
            _, name, chain = torch_rows[0]
            torch_note = f"YES, via {' -> '.join([*chain, name])}"
        else:
            torch_note = "no"
        print(
            f"{label}: {len(rows)} modules, {total_ms:.0f} ms in imports; {len(extra)} modules beyond the baseline, "
            f"{extra_ms:.0f} ms; torch imported: {torch_note}"
        )
        if label == BASELINE:
            continue
        by_package: dict[str, list[Any]] = {}
        for self_us, name, chain in extra:
            entry = by_package.setdefault(name.split(".")[0], [0, {}])
            entry[0] += self_us
            # runner's own packages: name their costliest modules; others: who imported them
            key = name if is_runner(name) else importer_of(chain, name)
            entry[1][key] = entry[1].get(key, 0) + self_us
        ranked = sorted(by_package.items(), key=lambda item: -item[1][0])[:top]
        print(f"  top {len(ranked)} packages beyond the baseline by own import time (costliest modules / importers):")
        for package, (self_us, parts) in ranked:
            named = sorted(parts.items(), key=lambda item: -item[1])
            shown = ", ".join(f"{key} {us / 1e3:.1f}" for key, us in named[:4]) + (", ..." if len(named) > 4 else "")
            print(f"    {self_us / 1e3:6.1f} ms  {package:<16} ({shown})")


def count_instructions(cmds: dict[str, list[str]], python: str, env: dict[str, str]) -> None:
    """Instructions of one run of each command under callgrind: a machine-load-independent
    cross-check of the time ratios (import work is interpreter code throughout)."""
    if shutil.which("valgrind") is None:
        print("--callgrind: valgrind not found")
        return
    print("\ninstructions (valgrind --tool=callgrind, one run each):")
    counts = {}
    with tempfile.TemporaryDirectory(prefix="runner-cold-") as tmp:
        for label, argv in cmds.items():
            if argv[0] != python:
                argv = [python, *argv]
            out = Path(tmp) / "callgrind.out"
            subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                check=False,
            )
            totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
            counts[label] = int(totals[0].split()[1]) if totals else 0
    for label, count in counts.items():
        print(f"  {label:<24} {count / 1e6:8.1f} M  {count / counts[BASELINE]:5.2f}x baseline")


def report(results: dict[str, list[float]], repeats: int, env: dict[str, str], load: str) -> None:
    baseline = statistics.median(results[BASELINE])
    bytecode = "not written (PYTHONDONTWRITEBYTECODE)" if env.get("PYTHONDONTWRITEBYTECODE") else "cached"
    print(
        f"cold start: {repeats} interleaved rounds, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"bytecode {bytecode}, 1-min load average {load}"
    )
    header = f"{'command':<24} {'median ms':>10} {'min':>8} {'max':>8} {'vs baseline':>12}  target"
    print(header)
    print("-" * len(header))
    for name, values in results.items():
        median = statistics.median(values)
        ratio = median / baseline
        if not name.startswith("runner "):
            verdict = ""
        else:
            ok = median <= TARGET_MS and ratio <= TARGET_RATIO
            verdict = "meets" if ok else "MISSES"
        print(f"{name:<24} {median:>10.1f} {min(values):>8.1f} {max(values):>8.1f} {ratio:>11.2f}x  {verdict}")
    print(f"targets: median <= {TARGET_MS:.0f} ms and <= {TARGET_RATIO:.1f}x the baseline")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = child_env(args.env_as_is)
    cmds = commands(args.python)
    load_before = os.getloadavg()[0]
    results = measure(cmds, args.repeats, args.warmup, env)
    report(results, args.repeats, env, f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    print()
    report_imports(args.python, cmds, env, args.top, args.importtime_runs)
    if args.callgrind:
        count_instructions(cmds, args.python, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
