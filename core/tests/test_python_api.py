"""``runner.fit`` and ``runner.load`` for scripts and notebooks: results, the round trip,
and no state leaking from one call into the next (in-process, on the toy plugin)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from core_helpers import HERMETIC_ENV, TOY, runner_command, write

import runner
from runner._contract.errors import RecipeError, RunnerError
from runner._recipe.source import parse_toml

#: A local plugin that changes process state the way real plugins do, when its callback runs.
NOISY = """
import os
import torch
from runner import hookimpl

class Noisy:
    def on_begin_train(self, run):
        torch.set_num_threads(1)
        torch.set_default_dtype(torch.float64)  # the next model built in this process would be float64
        os.environ["NOISY_PLUGIN_WAS_HERE"] = "1"

@hookimpl
def register_callbacks(register):
    register("noisy", Noisy)
"""


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)


def records(run_dir: Path) -> str:
    return (run_dir / "metrics.jsonl").read_text(encoding="utf-8")


def test_fit_returns_the_summary_and_metrics(toy_dir: Path) -> None:
    result = runner.fit(toy_dir / "toy.toml", overrides=["run.epochs=1"], run_dir=toy_dir / "one")
    assert result.run_dir == toy_dir / "one" and (result.global_step, result.epochs) == (8, 1)
    assert result.summary["metrics"]["val/main"] == result.metrics["val/main"]
    assert 0 <= result.metrics["val/main"]["accuracy"] <= 1
    assert [r["stage"] for r in result.records()][-1] == "val"


@pytest.mark.slow  # takes seconds
def test_fit_takes_toml_text_or_a_dict(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(toy_dir)  # the recipe's plugins = ["toy_plugin.py"] is relative to the working directory
    from_text = runner.fit(TOY, run_dir=toy_dir / "text")
    from_dict = runner.fit(parse_toml(TOY, "toy"), run_dir=toy_dir / "dict")
    assert records(from_text.run_dir) == records(from_dict.run_dir)
    default = runner.fit(TOY, overrides=["run.max_steps=1"])  # no run_dir: runs/<name>, then runs/<name>-1
    again = runner.fit(TOY, overrides=["run.max_steps=1"])
    assert (default.run_dir, again.run_dir) == (Path("runs/toy"), Path("runs/toy-1"))


def test_fit_errors_are_runner_errors(toy_dir: Path) -> None:
    with pytest.raises(RecipeError, match=r"-o run.epochs=many: run.epochs: expected int, found str 'many'"):
        runner.fit(toy_dir / "toy.toml", overrides=["run.epochs=many"], run_dir=toy_dir / "bad")
    runner.fit(toy_dir / "toy.toml", overrides=["run.max_steps=1"], run_dir=toy_dir / "taken")
    with pytest.raises(RunnerError, match="already holds a run; pass --resume"):
        runner.fit(toy_dir / "toy.toml", run_dir=toy_dir / "taken")


def test_fit_then_load_in_one_process(toy_dir: Path) -> None:
    result = runner.fit(toy_dir / "toy.toml", run_dir=toy_dir / "run")
    loaded = result.load()
    correct = total = 0
    for batch in loaded.batches("val.main"):
        predicted = loaded.predict(batch)["output"].argmax(-1)
        correct += int((predicted == batch[1]).sum())
        total += len(batch[1])
    assert correct / total == pytest.approx(result.metrics["val/main"]["accuracy"])
    assert "LoadedRun(" in repr(loaded) and "lin" in repr(loaded)


def state() -> dict[str, Any]:
    """What a run may change in the process, as far as a test can see it."""
    import numpy as np

    return {
        "threads": torch.get_num_threads(),
        "default dtype": torch.get_default_dtype(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "sigint": signal.getsignal(signal.SIGINT),
        "sigterm": signal.getsignal(signal.SIGTERM),
        "env": dict(os.environ),
        "local modules": sorted(name for name in sys.modules if name.startswith("runner_local_")),
        "torch rng": torch.get_rng_state(),
        "numpy rng": np.random.get_state()[1].tolist(),
    }


def same(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    differ = []
    for key, value in before.items():
        other = after[key]
        equal = torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other
        if not equal:
            differ.append(key)
    return differ


def test_fit_and_load_put_the_process_back_as_they_found_it(toy_dir: Path) -> None:
    noisy = write(toy_dir / "noisy.py", NOISY)
    torch.manual_seed(1234)
    before = state()
    result = runner.fit(
        toy_dir / "toy.toml",
        overrides=["run.deterministic=true", "run.seed=7", 'callbacks=[{ name = "noisy" }]'],
        run_dir=toy_dir / "noisy",
        plugins=[noisy],
    )
    assert same(before, state()) == []
    runner.load(result.run_dir)
    assert same(before, state()) == []


@pytest.mark.slow  # takes seconds
def test_two_fits_in_one_process_match_fresh_runs(toy_dir: Path) -> None:
    noisy = write(toy_dir / "noisy.py", NOISY)
    first = runner.fit(toy_dir / "toy.toml", overrides=["run.seed=1"], run_dir=toy_dir / "a")
    runner.fit(
        toy_dir / "toy.toml",
        overrides=["run.seed=2", "run.deterministic=true", 'callbacks=[{ name = "noisy" }]'],
        run_dir=toy_dir / "b",
        plugins=[noisy],
    )
    again = runner.fit(toy_dir / "toy.toml", overrides=["run.seed=1"], run_dir=toy_dir / "c")
    assert records(first.run_dir) == records(again.run_dir)
    assert records(first.run_dir) != records(toy_dir / "b")


@pytest.mark.slow
def test_fits_in_one_process_give_what_separate_processes_give(toy_dir: Path) -> None:
    noisy = write(toy_dir / "noisy.py", NOISY)
    variants = [
        ["run.seed=1"],
        ["run.seed=2", "run.deterministic=true", 'callbacks=[{ name = "noisy" }]'],
        ["run.seed=3", "model.hidden=8"],
    ]
    for index, overrides in enumerate(variants):
        runner.fit(toy_dir / "toy.toml", overrides=overrides, run_dir=toy_dir / f"in-{index}", plugins=[noisy])
    for index, overrides in enumerate(variants):
        args = [arg for item in overrides for arg in ("-o", item)]
        done = subprocess.run(
            [
                *runner_command(),
                "run",
                "toy.toml",
                *args,
                "-p",
                str(noisy),
                "--run-dir",
                f"out-{index}",
                "--no-progress",
            ],
            cwd=toy_dir,
            env={**os.environ, **HERMETIC_ENV},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert records(toy_dir / f"in-{index}") == records(toy_dir / f"out-{index}"), overrides
