"""Multi-process runs of ``runner run`` with the ddp backend (CPU, gloo).

Each test trains a tiny model in 2-3 worker processes through the CLI, the way a user
does; the local test plugin records which sample indices every rank reads
(``indices-rank<R>.txt``), injects failures and checkpoints every step.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from ddp_helpers import (
    TEST_PLUGIN,
    clean_env,
    counts,
    indices,
    pids_alive,
    recipe,
    run_cli,
    write_recipe,
)

from runner.testing import runner_command
from runner_ddp.backend import free_port, port_in_use

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 20  # [backend] timeout_s of the test recipes
#: Loss curves of 2 x B (ddp) and 1 x 2B (single process) agree to this: only the float summation
#: order differs (observed: at most 2e-7 relative over 19 AdamW steps on digits).
LOSS_RTOL = 1e-5


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def evaluate(weights: Path, source: str, num_samples: int = 31) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``weights`` on the val split, in this process."""
    sys.path.insert(0, str(TEST_PLUGIN.parent))
    try:
        import ddp_testplugin

        from runner import BuildContext
        from runner._plugins.manager import PluginManager
    finally:
        sys.path.pop(0)
    ctx = BuildContext(recipe=None, seed=0, run_dir=weights.parent / "eval")  # type: ignore[arg-type]
    val = ddp_testplugin.indexed("val", source=source, num_samples=num_samples, record=False, ctx=ctx)
    ctx.train_dataset = val
    model = PluginManager().load().registry.get("model", "mlp").build({"hidden": [16]}, ctx=ctx)
    model.load_state_dict(torch.load(weights))
    model.eval()
    with torch.no_grad():
        logits = model(val.x)
    accuracy = (logits.argmax(-1) == val.y).double().mean().item()
    loss = torch.nn.functional.cross_entropy(logits.double(), val.y).item()
    return accuracy, loss


def test_two_processes_see_each_sample_once_and_match_one_process(tmp_path: Path) -> None:
    """digits, 2 ranks x 32 vs 1 process x 64: same samples per step, same loss curve, and
    the all-reduced val accuracy is the one of the final weights on the whole val split."""
    common: dict[str, Any] = {"source": "digits", "epochs": 2, "faults": {"save_final": True}}
    ddp_tree = recipe(batch_size=32, optimizer={"name": "adamw", "lr": 1e-2}, **common)
    del ddp_tree["backend"]["start_method"]  # the default (forkserver on Linux CPU)
    ddp = run_cli("run", write_recipe(tmp_path / "ddp.toml", ddp_tree), "--run-dir", tmp_path / "ddp", "--no-progress")
    assert ddp.returncode == 0, ddp
    one_tree = recipe(backend="single", batch_size=64, record=False, optimizer={"name": "adamw", "lr": 1e-2}, **common)
    run_in_process(write_recipe(tmp_path / "one.toml", one_tree), tmp_path / "one")

    seen = indices(tmp_path / "ddp")
    length = len(torch.load(tmp_path / "ddp" / "final.pt")) and max(i for _, _, i in seen) + 1
    for epoch in (0, 1):
        count = counts(seen, epoch)
        assert set(count) == set(range(length))  # every sample, in every epoch
        padded = [i for i, c in count.items() if c > 1]
        assert sum(count.values()) - length == len(padded) == length % 2  # only the padding repeats
    per_rank = [[i for a, e, i in indices(tmp_path / "ddp", f"indices-rank{r}.txt") if e == 0] for r in (0, 1)]
    assert not set(per_rank[0][:-1]) & set(per_rank[1][:-1])  # disjoint shards (but the padded sample)

    ddp_train = [r for r in records(tmp_path / "ddp") if r["stage"] == "train"]
    one_train = [r for r in records(tmp_path / "one") if r["stage"] == "train"]
    full_steps = length // 64  # the last, partial batch of the epoch differs (it holds the padding)
    assert [r["step"] for r in ddp_train[:full_steps]] == list(range(1, full_steps + 1))
    for mine, theirs in zip(ddp_train[:full_steps], one_train[:full_steps], strict=True):
        assert mine["loss"] == pytest.approx(theirs["loss"], rel=LOSS_RTOL), (mine, theirs)

    final_val = [r for r in records(tmp_path / "ddp") if r["stage"] == "val"][-1]
    accuracy, loss = evaluate(tmp_path / "ddp" / "final.pt", "digits")
    assert final_val["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert final_val["loss"] == pytest.approx(loss, rel=1e-5)


def run_in_process(path: Path, run_dir: Path, resume: bool = False) -> None:
    """Train a single-process recipe in this process (cheaper than the CLI)."""
    from runner._engine.run import execute
    from runner._plugins.manager import PluginManager
    from runner._recipe.source import read_recipe
    from runner._recipe.validate import validate

    source = read_recipe(path)
    manager = PluginManager(local_plugins=[str(TEST_PLUGIN)]).load()
    validated = validate(source, manager.registry, manager.failures)
    execute(validated, manager, run_dir, resume=resume, allow_recipe_change=resume, show_progress=False)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    """Start a command in its own process group (so a failed test can stop all of it)."""
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


@contextlib.contextmanager
def stopped_at_exit(procs: list[subprocess.Popen[str]]) -> Iterator[None]:
    """Kill the process groups of ``procs`` still running when the block ends (a timeout)."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()


def _assert_no_workers_left(run_dir: Path) -> None:
    assert list(run_dir.glob("pid-*.txt")), "the test plugin recorded no worker pids"
    assert pids_alive(run_dir) == []


@pytest.mark.parametrize("kind", ["raise", "kill"])
def test_a_failing_rank_ends_the_job_naming_it(tmp_path: Path, kind: str) -> None:
    tree = recipe(faults={"rank": 1, "step": 3, "kind": kind}, epochs=50)
    (tmp_path / "tmp").mkdir()
    env = clean_env(TMPDIR=str(tmp_path / "tmp"))
    path = write_recipe(tmp_path / "r.toml", tree)
    ran = run_cli("run", path, "--run-dir", tmp_path / "run", "--no-progress", env=env)
    assert ran.returncode == 2, ran
    # Nothing of the launch stays in $TMPDIR (each failed rank left torch's pytorch-errorfile-*.pickle);
    # torch's compile cache is meant to stay.
    assert [p.name for p in (tmp_path / "tmp").iterdir() if not p.name.startswith("torchinductor_")] == []
    assert len(ran.errors) == 1, ran
    if kind == "raise":
        assert ran.errors[0].startswith("rank 1 on "), ran
        assert "ValueError: injected failure at step 3" in ran.errors[0]
    else:
        assert ran.errors[0].startswith("rank 1 (pid "), ran
        assert "was killed by SIGKILL" in ran.errors[0] or "died without an exception" in ran.errors[0], ran
    fault = float((tmp_path / "run" / "fault.txt").read_text(encoding="utf-8"))
    assert ran.ended - fault < TIMEOUT_S + 30
    _assert_no_workers_left(tmp_path / "run")


def test_restarted_workers_resume_from_the_checkpoint(tmp_path: Path) -> None:
    """max_restarts = 1: rank 1 is killed mid-epoch, the agent restarts both ranks, they
    resume from the step checkpoint and finish; that epoch still covers every sample."""
    tree = recipe(faults={"rank": 1, "step": 3, "kind": "kill"}, checkpoint=True, ddp={"max_restarts": 1})
    ran = run_cli("run", write_recipe(tmp_path / "r.toml", tree), "--run-dir", tmp_path / "run", "--no-progress")
    assert ran.returncode == 0, ran
    seen = indices(tmp_path / "run")
    assert {attempt for attempt, _, _ in seen} == {0, 1}
    assert set(counts(seen, 0)) == set(range(60)) and set(counts(seen, 1)) == set(range(60))
    resumed = [i for attempt, epoch, i in seen if attempt == 1 and epoch == 0]
    # The fault fires in step 3's on_end_train_step, before the checkpointer (a run object
    # after the callbacks) saves step 3: the restart resumes from step 2, each sample once.
    assert len(resumed) == len(set(resumed)) == 60 - 2 * 3 * 2
    steps = [r["step"] for r in records(tmp_path / "run") if r["stage"] == "train"]
    assert steps == list(range(1, 21))  # the failed attempt's records after the checkpoint are gone
    _assert_no_workers_left(tmp_path / "run")


def _default_checkpointer_refuses_several_processes() -> str:
    from runner import BuildContext, RunnerError
    from runner._plugins.manager import PluginManager

    component = PluginManager().load().registry.find("checkpointer", "default")
    if component is None:
        return "the runner-checkpoint plugin is not installed"
    ctx = BuildContext(recipe=None, seed=0, run_dir=Path("."), world_size=2)  # type: ignore[arg-type]
    try:
        component.build({}, ctx=ctx, run_dir=Path("unused"))
    except RunnerError as exc:
        return f"runner-checkpoint's default checkpointer refuses multi-process runs: {exc}"
    return ""


def test_restart_with_the_default_checkpointer(tmp_path: Path) -> None:
    reason = _default_checkpointer_refuses_several_processes()
    if reason:
        pytest.skip(reason)
    tree = recipe(faults={"rank": 1, "step": 3, "kind": "kill"}, ddp={"max_restarts": 1})
    tree["checkpoint"] = {"name": "default", "every_n_steps": 1}
    ran = run_cli("run", write_recipe(tmp_path / "r.toml", tree), "--run-dir", tmp_path / "run", "--no-progress")
    assert ran.returncode == 0, ran
    seen = indices(tmp_path / "run")
    assert set(counts(seen, 0)) == set(range(60))
    assert [r["step"] for r in records(tmp_path / "run") if r["stage"] == "train"] == list(range(1, 21))


@pytest.mark.parametrize("checkpointer", ["step", "default"])
def test_resume_two_process_checkpoint_on_one_and_three(tmp_path: Path, checkpointer: str) -> None:
    """A 2-process run stops at step 4 of 10 in epoch 0 (24 of 60 samples). Resumed on 1
    process (single backend) and on 3 processes, epoch 0 continues from global sample 24:
    every sample exactly once per epoch; the 3-process val accuracy (31 samples, uneven
    shards) is that of the final weights on the whole split. ``step`` is the test plugin's
    minimal checkpointer, ``default`` runner-checkpoint's (a changed world size is a recipe
    change for it: --allow-recipe-change)."""
    if checkpointer == "default" and (reason := _default_checkpointer_refuses_several_processes()):
        pytest.skip(reason)
    table = {"name": "step"} if checkpointer == "step" else {"name": "default", "every_n_steps": 1}
    tree = {**recipe(faults={"stop_at_step": 4}), "checkpoint": table}
    first = run_cli("run", write_recipe(tmp_path / "r.toml", tree), "--run-dir", tmp_path / "first", "--no-progress")
    assert first.returncode == 0, first
    assert [r["step"] for r in records(tmp_path / "first") if r["stage"] == "train"] == [1, 2, 3, 4]
    before = indices(tmp_path / "first")
    assert sum(counts(before, 0).values()) == 24

    for processes in (1, 3):
        run_dir = tmp_path / f"on{processes}"
        shutil.copytree(tmp_path / "first", run_dir)
        for path in run_dir.glob("indices-*.txt"):
            path.unlink()
        if processes == 1:
            again = recipe(backend="single", faults={"save_final": True})
        else:
            again = recipe(nproc=3, faults={"save_final": True})
        path = write_recipe(tmp_path / f"r{processes}.toml", {**again, "checkpoint": table})
        if processes == 1:  # in this process: cheaper than the CLI
            run_in_process(path, run_dir, resume=True)
        else:
            ran = run_cli("run", path, "--run-dir", run_dir, "--resume", "--allow-recipe-change", "--no-progress")
            assert ran.returncode == 0, ran
        after = indices(run_dir)
        epoch0 = counts(before + after, 0)
        assert sorted(epoch0) == list(range(60)) and set(epoch0.values()) == {1}, processes
        epoch1 = counts(after, 1)
        assert sorted(epoch1) == list(range(60)) and set(epoch1.values()) == {1}, processes
        steps = [r["step"] for r in records(run_dir) if r["stage"] == "train"]
        per_step = 3 * processes
        expected = 4 + -(-36 // per_step) + -(-(60 // processes) // 3)
        assert steps == list(range(1, expected + 1)), processes
        final_val = [r for r in records(run_dir) if r["stage"] == "val"][-1]
        accuracy, loss = evaluate(run_dir / "final.pt", "synthetic")
        assert final_val["accuracy"] == pytest.approx(accuracy, abs=1e-9)
        assert final_val["loss"] == pytest.approx(loss, rel=1e-5)


def test_ranks_with_different_recipes_refuse_to_train(tmp_path: Path) -> None:
    """Two processes joined through RANK/WORLD_SIZE (as torchrun or another launcher would
    start them) whose recipes differ: both stop with the same clear error, exit 2."""
    path = write_recipe(tmp_path / "r.toml", recipe())
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = clean_env(
            RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        args = [*runner_command(), "run", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]
        if rank == 1:
            args += ["-o", "run.seed=1"]
        procs.append(start(args, env))
    with stopped_at_exit(procs):
        outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 2, stderr
        assert "error: the recipe of rank 1 differs from rank 0's" in stderr, stderr


def test_process_steps_under_a_launcher_are_done_by_rank_0_alone(tmp_path: Path) -> None:
    """Two ranks started as torchrun would (RANK/WORLD_SIZE set, join mode) on a recipe with
    a three-shard ``[[process]]`` step: rank 0 processes every shard before training while
    rank 1 waits in the rendezvous (rank 0 used to process its RANK/WORLD_SIZE share and
    wait an hour for shards no other rank processes)."""
    data = tmp_path / "data"
    shutil.copytree(ROOT / "recipes" / "data", data)
    text = (ROOT / "recipes" / "blobs_process.toml").read_text(encoding="utf-8")
    path = tmp_path / "blobs.toml"
    path.write_text(text.replace("epochs = 5", 'epochs = 1\ndevice = "cpu"\ntest = false'), encoding="utf-8")
    port = str(free_port())
    cache = tmp_path / "cache"
    procs = []
    for rank in (0, 1):
        env = clean_env(
            RANK=str(rank),
            WORLD_SIZE="2",
            LOCAL_RANK=str(rank),
            LOCAL_WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            RUNNER_CACHE_DIR=str(cache),
        )
        args = [*runner_command(), "run", str(path), "--run-dir", str(tmp_path / "run"), "--no-progress"]
        procs.append(start([*args, "-o", "run.backend=ddp", "-o", "backend.timeout_s=120"], env))
    with stopped_at_exit(procs):
        outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    assert "processed 3 shard(s), 0 cached" in outputs[0][1]
    assert "process" not in outputs[1][1]  # rank 1 ran no step
    assert (tmp_path / "run" / "summary.json").exists()


def test_two_nodes_one_launched_by_runner_one_by_torchrun(tmp_path: Path) -> None:
    """The README's multi-node commands, both "nodes" on this machine: node 0 is ``runner
    run`` launching its worker (nnodes = 2, rdzv_endpoint), node 1 is ``torchrun`` whose
    worker joins it; they meet at one c10d rendezvous and train as 2 ranks."""
    path = write_recipe(tmp_path / "r.toml", recipe(nproc=1, epochs=1))
    endpoint = f"localhost:{free_port()}"
    common = ["--run-dir", str(tmp_path / "run"), "--no-progress", "-o", "backend.nnodes=2"]
    common += ["-o", f"backend.rdzv_endpoint={endpoint}", "-o", "backend.rdzv_id=ddp-test"]
    node0 = [*runner_command(), "run", str(path), *common]
    node1 = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    node1 += ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "ddp-test"]
    node1 += [*runner_command(), "run", str(path), *common, "-o", "backend.node_rank=1"]
    procs = [start(node0, clean_env())]
    port = int(endpoint.rpartition(":")[2])
    deadline = time.monotonic() + 120
    while not port_in_use(port) and procs[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # node 0 hosts the rendezvous store: start node 1 once it listens
    procs.append(start(node1, clean_env()))
    with stopped_at_exit(procs):
        outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    seen = indices(tmp_path / "run")
    assert sorted(counts(seen, 0)) == list(range(60)) and set(counts(seen, 0).values()) == {1}
    assert len(list((tmp_path / "run").glob("indices-rank*.txt"))) == 2
