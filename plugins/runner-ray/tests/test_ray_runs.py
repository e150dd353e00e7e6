"""runner-ray on a real local Ray instance (``ray.init(num_cpus=2)``, started once for the
module): ``[[process]]`` shards as Ray tasks, and training with the ``ray`` backend
through the CLI, the way a user runs it.

The training tests reuse the runner-ddp test plugin and helpers (the ray backend's
workers are ddp ranks): a dataset that records which sample each rank reads, injected
failures, and a step checkpointer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed here: pip install 'runner-ray[ray]'")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "runner-ddp" / "tests"))

from ddp_helpers import (  # noqa: E402
    Ran,
    clean_env,
    counts,
    indices,
    pids_alive,
    recipe,
    run_cli,
    write_recipe,
)

from runner import PluginError  # noqa: E402
from runner._plugins.manager import PluginManager  # noqa: E402
from runner._processing import load_output, run_steps  # noqa: E402
from runner._recipe.source import read_recipe  # noqa: E402
from runner._recipe.validate import validate  # noqa: E402
from runner.testing import runner_command  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

PROCESSOR = HERE / "ray_processor.py"
DIGITS = ROOT / "recipes" / "digits.toml"


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance for this module; CLI runs join it through ``RAY_ADDRESS``."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


# -- [[process]] executor = "ray" ------------------------------------------------------


def process_recipe(tmp_path: Path, files: list[str], executor: str, cache: Path, **params: Any) -> Any:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in params.items())
    path = tmp_path / f"process-{cache.name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            plugins = ["{PROCESSOR}"]
            [run]
            epochs = 1
            [data.train]
            dataset = {{ name = "digits", split = "train" }}
            [model]
            name = "mlp"
            [task]
            name = "classification"
            [optimizer]
            name = "sgd"
            [[process]]
            name = "parse"
            inputs = {json.dumps(files)}
            process_count = 2
            executor = {executor}
            cache_dir = "{cache}"
            """
        )
        + extra,
        encoding="utf-8",
    )
    manager = PluginManager(local_plugins=[str(PROCESSOR)]).load()
    return validate(read_recipe(path), manager.registry, manager.failures), manager


def inputs(tmp_path: Path, count: int = 5) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"part{i}.txt").write_text(" ".join(str(i * 100 + j) for j in range(i + 2)), encoding="utf-8")
    return [str(folder / f"part{i}.txt") for i in range(count)]


def test_ray_processing_equals_local_processing_byte_for_byte(tmp_path: Path, ray_address: str) -> None:
    files = inputs(tmp_path)
    pids = tmp_path / "pids.txt"
    local, manager = process_recipe(tmp_path, files, '"process"', tmp_path / "local", record=str(pids))
    assert run_steps(local, manager, report=None)[0].processed == 5
    pids.unlink()
    on_ray, manager = process_recipe(tmp_path, files, '{ name = "ray" }', tmp_path / "ray", record=str(pids))
    assert on_ray.process[0].framework["executor"]["name"] == "ray"
    result = run_steps(on_ray, manager, report=None)[0]
    assert result.processed == 5
    ray_pids = set(pids.read_text(encoding="utf-8").split())
    assert len(pids.read_text(encoding="utf-8").split()) == 5 and str(os.getpid()) not in ray_pids  # Ray tasks

    local_shards = sorted(p.name for p in (tmp_path / "local" / "shards").iterdir())
    ray_shards = sorted(p.name for p in (tmp_path / "ray" / "shards").iterdir())
    assert local_shards == ray_shards and len(local_shards) == 5  # same content-addressed keys
    for name in local_shards:
        assert (tmp_path / "local" / "shards" / name).read_bytes() == (tmp_path / "ray" / "shards" / name).read_bytes()
    local_manifest = json.loads((tmp_path / "local" / "outputs" / "parse.json").read_text(encoding="utf-8"))
    ray_manifest = json.loads((tmp_path / "ray" / "outputs" / "parse.json").read_text(encoding="utf-8"))
    assert local_manifest == ray_manifest
    merged = load_output("parse", tmp_path / "ray")
    assert merged["x"].tolist()[:3] == [0.0, 1.0, 100.0]  # input order kept

    # A cached output is reused whichever executor made it: locally, nothing to do.
    again, manager = process_recipe(tmp_path, files, '"inline"', tmp_path / "ray", record=str(pids))
    rerun = run_steps(again, manager, report=None)[0]
    assert (rerun.processed, rerun.cached) == (0, 5)


def test_a_processor_error_on_ray_names_the_processor(tmp_path: Path, ray_address: str) -> None:
    files = inputs(tmp_path)
    validated, manager = process_recipe(
        tmp_path, files, '{ name = "ray", max_in_flight = 1 }', tmp_path / "c", fail_on="part3"
    )
    with pytest.raises(PluginError) as caught:
        run_steps(validated, manager, report=None)
    assert "processor 'parse' (" in str(caught.value) and "raised ValueError: cannot parse part3.txt" in str(
        caught.value
    )
    assert isinstance(caught.value.__cause__, ValueError)
    assert any("raised in a Ray task" in note for note in getattr(caught.value.__cause__, "__notes__", []))
    # One shard at a time, in order: the three before the failing one are cached.
    assert len(list((tmp_path / "c" / "shards").iterdir())) == 3


def test_runner_process_on_its_own_local_ray_instance(tmp_path: Path, ray_address: str) -> None:
    """``address = "local"``: the step starts a Ray instance of its own and shuts it down;
    a processor error is one line naming the processor's plugin, exit 2."""

    def raylets() -> int:
        return sum(1 for p in Path("/proc").glob("[0-9]*/comm") if _read(p) == "raylet")

    before = raylets()
    files = inputs(tmp_path)
    executor = '{ name = "ray", address = "local", local_cpus = 1, max_in_flight = 1 }'  # shards in order
    process_recipe(tmp_path, files, executor, tmp_path / "own", fail_on="part4")
    ran = run_cli("process", tmp_path / "process-own.toml", env=clean_env(), timeout=300)
    assert ran.returncode == 2, ran
    assert len(ran.errors) == 1, ran
    assert (
        ran.errors[0].startswith("process[0]: processor 'parse' (")
        and "ray_processor.py local) raised" in ran.errors[0]
    )
    assert "ValueError: cannot parse part4.txt" in ran.errors[0], ran
    assert len(list((tmp_path / "own" / "shards").iterdir())) == 4
    deadline = time.monotonic() + 30  # the instance it started is gone (its processes may take a moment)
    while raylets() != before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raylets() == before


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


# -- [run] backend = "ray" ---------------------------------------------------------------


def train(recipe: Path | dict[str, Any], run_dir: Path, address: str, *args: str) -> Ran:
    """``runner run RECIPE --run-dir RUN_DIR --no-progress ARGS`` on the test's Ray instance
    (``recipe``: a file, or a tree written next to the run directory)."""
    if isinstance(recipe, dict):
        recipe = write_recipe(run_dir.with_suffix(".toml"), recipe)
    return run_cli(
        "run", recipe, "--run-dir", run_dir, "--no-progress", *args, env=clean_env(RAY_ADDRESS=address), timeout=400
    )


def ray_recipe(**options: Any) -> dict[str, Any]:
    backend = options.pop("backend_params", {})
    tree = recipe(backend="ray", **options)
    tree["backend"] = {"num_workers": 2, "timeout_s": 60, **backend}
    return tree


def test_ray_backend_trains_digits_to_the_single_process_bar(tmp_path: Path, ray_address: str) -> None:
    """2 Ray Train workers x 32 = the single-process batch of 64: same number of steps,
    every rank a DDP rank, and the same accuracy bar as the single-process run (>= 0.95)."""
    ran = train(DIGITS, tmp_path / "run", ray_address, "-o", "run.backend=ray", "-o", "data.train.loader.batch_size=32")
    assert ran.returncode == 0, ran
    metrics = records(tmp_path / "run")
    train_steps = [r["step"] for r in metrics if r["stage"] == "train"]
    assert train_steps[-1] == 200, train_steps  # 1257 samples / 64 per step x 10 epochs, as on one process
    val = [r for r in metrics if r["stage"] == "val" and r["key"] == "main"]
    assert val[-1]["accuracy"] >= 0.95, val[-1]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["global_step"], summary["stop_reason"]) == (200, ""), summary


def test_a_relative_run_directory_is_the_drivers(tmp_path: Path, ray_address: str) -> None:
    """Without --run-dir the run lands in ./runs/<name> of the directory runner was started
    in, not in Ray Train's artifacts folder of the worker."""
    path = write_recipe(tmp_path / "r.toml", ray_recipe(epochs=1, record=False))
    ran = run_cli("run", path, "--no-progress", env=clean_env(RAY_ADDRESS=ray_address), timeout=400, cwd=tmp_path)
    assert ran.returncode == 0, ran
    assert [r["step"] for r in records(tmp_path / "runs" / "ddp-test") if r["stage"] == "train"][-1] == 10


def test_workers_the_cluster_cannot_place_are_refused_at_once(tmp_path: Path, ray_address: str) -> None:
    tree = ray_recipe(backend_params={"num_workers": 5})
    ran = train(tree, tmp_path / "run", ray_address)
    assert ran.returncode == 2, ran
    assert ran.errors == [
        "the Ray cluster cannot place 5 workers: they need CPU 5 (has 2); lower num_workers or the per-worker "
        "resources, or add nodes (an autoscaling cluster must be scaled up first)"
    ], ran
    assert ran.seconds < 60, ran


def test_ray_workers_shard_the_data_like_ddp(tmp_path: Path, ray_address: str) -> None:
    ran = train(ray_recipe(epochs=1), tmp_path / "run", ray_address)
    assert ran.returncode == 0, ran
    seen = indices(tmp_path / "run")
    assert set(counts(seen, 0)) == set(range(60)) and sum(counts(seen, 0).values()) == 60
    rank0 = {i for _, _, i in indices(tmp_path / "run", "indices-rank0.txt")}
    rank1 = {i for _, _, i in indices(tmp_path / "run", "indices-rank1.txt")}
    assert rank0 and rank1 and not rank0 & rank1


def test_a_failing_ray_worker_ends_the_run_naming_its_rank(tmp_path: Path, ray_address: str) -> None:
    tree = ray_recipe(faults={"rank": 1, "step": 3, "kind": "raise"}, epochs=50)
    ran = train(tree, tmp_path / "run", ray_address)
    assert ran.returncode == 2, ran
    assert len(ran.errors) == 1, ran
    # The hook's exception is blamed on the plugin that owns it, as on one process.
    assert ran.errors[0].startswith("rank 1: plugin "), ran
    assert "hook on_end_train_step raised ValueError: injected failure at step 3" in ran.errors[0], ran


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_driver_stops_every_worker(tmp_path: Path, ray_address: str, signum: int) -> None:
    """Ctrl-C (or SIGTERM) to ``runner run``: Ray Train's workers are stopped, the run ends
    with one line and 128 + the signal, and no worker process is left."""
    path = write_recipe(tmp_path / "r.toml", ray_recipe(epochs=100_000, record=False))
    proc = subprocess.Popen(
        [*runner_command(), "run", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"],
        env=clean_env(RAY_ADDRESS=ray_address),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "run" / "metrics.jsonl").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.5)
        time.sleep(2)  # some steps in
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 128 + signum, stderr
    assert errors == [f"error: stopped by {signal.Signals(signum).name}: every worker was stopped"], stderr
    assert list((tmp_path / "run").glob("pid-*.txt")), "the test plugin recorded no worker pids"
    deadline = time.monotonic() + 30  # Ray stops the actors of a finished job asynchronously
    while pids_alive(tmp_path / "run") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert pids_alive(tmp_path / "run") == []


@pytest.mark.parametrize("checkpointer", ["step", "default"])
def test_restarted_ray_workers_resume_from_the_checkpoint(tmp_path: Path, ray_address: str, checkpointer: str) -> None:
    """max_restarts = 1: rank 1 dies mid-epoch (SIGKILL), Ray Train restarts the group, the
    workers resume from the newest checkpoint (the test plugin's, or runner-checkpoint's
    ``default``) and the epoch still covers every sample."""
    tree = ray_recipe(
        faults={"rank": 1, "step": 3, "kind": "kill"}, checkpoint=True, backend_params={"max_restarts": 1}
    )
    if checkpointer == "default":
        tree["checkpoint"] = {"name": "default", "every_n_steps": 1}
    ran = train(tree, tmp_path / "run", ray_address)
    assert ran.returncode == 0, ran
    seen = indices(tmp_path / "run")
    assert {attempt for attempt, _, _ in seen} == {0, 1}
    assert set(counts(seen, 0)) == set(range(60)) and set(counts(seen, 1)) == set(range(60))
    resumed = [i for attempt, epoch, i in seen if attempt == 1 and epoch == 0]
    # From the newest checkpoint on, once each: step 2's, since every checkpointer is a run
    # object called after the callbacks, so the fault in step 3 comes before its save.
    assert len(resumed) == len(set(resumed)) == 60 - 2 * 3 * 2
    steps = [r["step"] for r in records(tmp_path / "run") if r["stage"] == "train"]
    assert steps == list(range(1, 21))  # the failed attempt's records after the checkpoint are gone


def test_a_stopped_ray_run_resumes_exactly(tmp_path: Path, ray_address: str) -> None:
    """runner-checkpoint's ``default`` checkpointer with the ray backend: a run stopped at
    step 5 and continued with ``--resume`` logs the same losses, bit for bit, as a run that
    was never stopped."""
    checkpoint = {"name": "default", "every_n_steps": 4}
    whole = {**ray_recipe(epochs=2, record=False), "checkpoint": checkpoint}
    assert (ran := train(whole, tmp_path / "whole", ray_address)).returncode == 0, ran
    stopped = {**ray_recipe(epochs=2, record=False, faults={"stop_at_step": 5}), "checkpoint": checkpoint}
    assert (first := train(stopped, tmp_path / "parts", ray_address)).returncode == 0, first
    assert [r["step"] for r in records(tmp_path / "parts") if r["stage"] == "train"][-1] == 5
    second = train(tmp_path / "parts.toml", tmp_path / "parts", ray_address, "--resume")
    assert second.returncode == 0, second

    def losses(run_dir: Path) -> list[tuple[int, float]]:
        return [(r["step"], r["loss"]) for r in records(run_dir) if r["stage"] == "train"]

    assert losses(tmp_path / "parts") == losses(tmp_path / "whole")
    assert len(losses(tmp_path / "whole")) == 20
