"""What the training batteries need from the core: on_begin_val/test_epoch around each
loader, collected step outputs (bounded), run.add_summary into summary.json, run.data_wait,
[run] num_threads (default and explicit) and [run] compile (state dict keys unchanged),
and the progress display."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from core_helpers import TOY, TOY_PLUGIN, check_recipe

from runner._engine import progress as progress_module
from runner._engine.progress import Progress
from runner._engine.run import execute
from runner._engine.threads import choose_threads, default_threads, local_processes, physical_cores
from runner._plugins.manager import PluginManager

PLUGIN = r'''
import time

from runner import StepOutput, Task, hookimpl

CALLS = []


class Watch:
    """Records the hooks around evaluations, the outputs it is handed, and the loop's data wait."""

    def __init__(self, collect=0):
        self.collect = collect

    def setup(self, run, stage):
        if self.collect:
            run.collect_outputs(self.collect)

    def on_begin_train(self, run):
        import torch

        CALLS.append(("threads", torch.get_num_threads()))

    def on_begin_val_epoch(self, run, global_step, key):
        CALLS.append(("begin val", global_step, key, run.model.training))

    def on_end_val_epoch(self, run, global_step, key, outputs):
        CALLS.append(("end val", global_step, key, None if outputs is None else [tuple(t.shape) for t in outputs]))

    def on_begin_test_epoch(self, run, key):
        CALLS.append(("begin test", key))

    def on_end_test_epoch(self, run, key, outputs):
        CALLS.append(("end test", key, None if outputs is None else [tuple(t.shape) for t in outputs]))

    def on_end_train(self, run):
        run.add_summary("watch", {"steps": run.global_step, "nested": [1, 2]})
        CALLS.append(("data_wait", run.data_wait))


class SlowData:
    """A dataset whose every sample takes a while: the loop waits for data."""

    def __init__(self, n=16):
        import torch

        self.x = torch.randn(n, 4)
        self.y = torch.randint(0, 2, (n,))
        self.meta = {"in_features": 4, "num_classes": 2}

    def __len__(self):
        return len(self.y)

    def __getitem__(self, index):
        time.sleep(0.01)
        return self.x[index], self.y[index]


class ClsOutputs(Task):
    """Cross-entropy; returns the logits as step outputs."""

    def train_step(self, model, batch, step):
        import torch.nn.functional as F

        x, y = batch
        logits = model(x)
        return StepOutput(F.cross_entropy(logits, y), {}, len(y), outputs=(logits.detach(),))

    val_step = train_step


@hookimpl
def register_callbacks(register):
    register("watch", Watch)


@hookimpl
def register_datasets(register):
    register("slow", SlowData)


@hookimpl
def register_tasks(register):
    register("cls_outputs", ClsOutputs)
'''


@pytest.fixture
def batteries(write_plugin: Callable[[str, str], str]) -> tuple[PluginManager, Any]:
    path = write_plugin("batteries", PLUGIN)
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), path], use_entry_points=False).load()
    module = sys.modules["runner_local_batteries"]
    module.CALLS.clear()
    return manager, module


def _run(manager: PluginManager, tmp_path: Path, *overrides: str, text: str = TOY) -> tuple[Any, Path]:
    name = f"run-{len(list(tmp_path.glob('run-*')))}"
    recipe = check_recipe(text, manager, tmp_path, overrides, name=f"{name}.toml")
    result = execute(recipe, manager, tmp_path / name, show_progress=False)
    return result, tmp_path / name


TEST_SPLIT = '\n[data.test.held]\ndataset = { name = "toy", split = "test", n = 24 }\nloader = { batch_size = 16 }\n'


@pytest.mark.slow  # takes seconds
def test_hooks_bracket_each_loader_and_outputs_are_opt_in(batteries: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, module = batteries
    _run(manager, tmp_path, "callbacks=[{name='watch'}]", "run.epochs=1", text=TOY + TEST_SPLIT)
    calls = [c for c in module.CALLS if c[0] not in ("threads", "data_wait")]
    # validation begins before eval mode is set; outputs are None unless asked for
    assert calls == [
        ("begin val", 8, "main", True),
        ("end val", 8, "main", None),
        ("begin test", "held"),
        ("end test", "held", None),
    ]


def test_collected_outputs_are_concatenated_and_bounded(
    batteries: tuple[PluginManager, Any], tmp_path: Path, write_plugin: Callable[[str, str], str]
) -> None:
    manager, module = batteries
    # the toy task returns no outputs; the classification-like task below returns (logits,)
    _run(manager, tmp_path, "callbacks=[{name='watch', collect=1000}]", "run.epochs=1", "task.name=cls_outputs")
    [end] = [c for c in module.CALLS if c[0] == "end val"]
    assert end[3] == [(32, 2)]  # the whole val split, both batches
    module.CALLS.clear()
    with pytest.warns(RuntimeWarning, match=r"val/main: step outputs beyond 20 rows are not collected"):
        _run(manager, tmp_path, "callbacks=[{name='watch', collect=20}]", "run.epochs=1", "task.name=cls_outputs")
    [end] = [c for c in module.CALLS if c[0] == "end val"]
    assert end[3] == [(20, 2)]


@pytest.mark.slow  # takes seconds
def test_add_summary_goes_into_summary_json(batteries: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, _ = batteries
    result, run_dir = _run(manager, tmp_path, "callbacks=[{name='watch'}]")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["extras"] == {"watch": {"steps": 16, "nested": [1, 2]}}
    assert result.extras == summary["extras"]


def test_add_summary_refuses_what_json_cannot_hold() -> None:
    from runner._contract.context import RunContext

    run = RunContext(recipe=None, run_dir=Path("."), backend=None, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"add_summary\('x'\): the value must be JSON data"):
        run.add_summary("x", {1, 2})
    with pytest.raises(ValueError, match="max_samples must be at least 1"):
        run.collect_outputs(0)
    run.collect_outputs(10)
    run.collect_outputs(5)
    assert run.outputs_limit == 10  # the largest request wins


def test_data_wait_measures_the_time_spent_waiting_for_batches(
    batteries: tuple[PluginManager, Any], tmp_path: Path
) -> None:
    manager, module = batteries
    slow = TOY.replace('dataset = { name = "toy", n = 64 }', 'dataset = { name = "slow", n = 16 }')
    _run(manager, tmp_path, "callbacks=[{name='watch'}]", "run.epochs=1", text=slow)
    [(_, waited)] = [c for c in module.CALLS if c[0] == "data_wait"]
    assert waited >= 16 * 0.01 * 0.9  # every sample's sleep happened while the loop waited
    module.CALLS.clear()
    _run(manager, tmp_path, "callbacks=[{name='watch'}]", "run.epochs=1")
    [(_, fast)] = [c for c in module.CALLS if c[0] == "data_wait"]
    assert fast < waited


# -- threads -------------------------------------------------------------------------------------


def test_default_threads_share_the_cores(tmp_path: Path) -> None:
    assert default_threads(cores=16, processes=4, loader_workers=0, environ={}) == (
        4,
        "16 physical cores / 4 local processes",
    )
    assert default_threads(cores=16, processes=4, loader_workers=2, environ={})[0] == 2
    assert default_threads(cores=2, processes=4, loader_workers=3, environ={})[0] == 1
    assert default_threads(cores=8, processes=1, loader_workers=0, environ={"OMP_NUM_THREADS": "3"}) == (
        None,
        "OMP_NUM_THREADS=3",
    )
    assert local_processes(4, {"LOCAL_WORLD_SIZE": "2"}) == 2
    assert local_processes(4, {}) == 4
    assert choose_threads(3, world_size=8, loader_workers=8, environ={"OMP_NUM_THREADS": "1"}) == (
        3,
        "[run] num_threads",
    )
    # two hyper-threads of one core count once
    for cpu, core in ((0, 0), (1, 0), (2, 1), (3, 1)):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text("0\n")
        (topology / "core_id").write_text(f"{core}\n")
    assert physical_cores([0, 1, 2, 3], topology=tmp_path) == 2
    assert physical_cores([0, 5], topology=tmp_path) == 2  # cpu5's topology unknown: counted alone


def test_num_threads_is_set_before_training(
    batteries: tuple[PluginManager, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, module = batteries
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _run(manager, tmp_path, "callbacks=[{name='watch'}]", "run.epochs=1", "run.num_threads=1")
        assert ("threads", 1) in module.CALLS
        assert torch.get_num_threads() == 2  # given back when the in-process run ended
        module.CALLS.clear()
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr("runner._engine.threads.physical_cores", lambda: 2)
        _run(manager, tmp_path, "callbacks=[{name='watch'}]", "run.epochs=1")
        assert ("threads", 2) in module.CALLS  # 2 cores, 1 process, no loader workers
    finally:
        torch.set_num_threads(before)


def test_num_threads_and_compile_are_validated(toy_manager: PluginManager, tmp_path: Path) -> None:
    from core_helpers import recipe_problems

    problems = recipe_problems(TOY, toy_manager, tmp_path, ("run.num_threads=0", "run.compile='fastest'"))
    assert any("run.num_threads" in p and "at least 1" in p for p in problems), problems
    assert any("run.compile" in p for p in problems), problems
    recipe = check_recipe(TOY, toy_manager, tmp_path, ("run.compile='max-autotune'",))
    assert recipe.run.compile == "max-autotune"


# -- compile ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_compiled_model_keeps_its_state_dict_keys(batteries: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, _ = batteries
    eager, eager_dir = _run(manager, tmp_path, "run.epochs=1", "run.deterministic=true")
    compiled, compiled_dir = _run(manager, tmp_path, "run.epochs=1", "run.deterministic=true", "run.compile=true")
    assert compiled.global_step == eager.global_step
    eager_val = [json.loads(x) for x in (eager_dir / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    compiled_val = [json.loads(x) for x in (compiled_dir / "metrics.jsonl").read_text().splitlines() if '"val"' in x]
    assert compiled_val[-1]["loss"] == pytest.approx(eager_val[-1]["loss"], rel=1e-4)


# -- progress --------------------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def fake_run(step: int, samples: int, epoch: int) -> Any:
    return SimpleNamespace(
        global_step=step,
        samples_seen=samples,
        epoch=epoch,
        steps_per_epoch=20,
        recipe=SimpleNamespace(run=SimpleNamespace(epochs=10, max_steps=None)),
    )


def test_progress_status_line_and_labelled_metrics() -> None:
    run = fake_run(0, 0, 0)
    progress = Progress(200, enabled=True, stream=io.StringIO(), run=run)
    run.global_step, run.samples_seen, run.epoch = 50, 3200, 2
    line = progress.status_line(now=progress.started + 10.0)
    assert line == "epoch 3/10  50/200 steps  320 samples/s  ETA 0:00:30"
    progress.update(50, {"stage": "train", "epoch": 2, "step": 50, "loss": 0.5, "lr": 0.01})
    progress.update(50, {"stage": "val", "key": "main", "epoch": 2, "step": 50, "loss": 0.25, "accuracy": 0.9})
    assert progress.metric_lines() == ["train     loss 0.5 lr 0.01", "val/main  loss 0.25 accuracy 0.9"]


def test_progress_on_a_terminal_redraws_on_a_timer_and_leaves_the_last_state() -> None:
    stream = Tty()
    run = fake_run(0, 0, 0)
    progress = Progress(100, enabled=True, stream=stream, run=run, refresh_per_second=20)
    import time

    for step in range(1, 6):  # no update() calls: the timer reads the live counters
        run.global_step, run.samples_seen = step * 10, step * 640
        time.sleep(0.15)
    progress.update(50, {"stage": "val", "key": "main", "epoch": 0, "step": 50, "loss": 0.25})
    progress.close()
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "20/100 steps" in out and "40/100 steps" in out  # drawn between records
    last = out.rstrip().splitlines()[-2:]  # the final state stays on screen
    assert last[0].startswith("train ") and "50/100 steps" in last[0] and last[1] == "val/main  loss 0.25"
    assert "ETA" in out and "samples/s" in out


def test_progress_off_a_terminal_prints_one_line_per_record() -> None:
    stream = io.StringIO()
    progress = Progress(100, enabled=True, stream=stream, run=fake_run(0, 0, 0))
    progress.update(10, {"stage": "train", "epoch": 0, "step": 10, "loss": 0.5})
    progress.update(20, None)
    progress.close()
    assert stream.getvalue().splitlines() == ["[train] epoch 0 step 10/100 loss 0.5 (eta 0s)"]


def test_start_up_status_is_announced_then_cleared() -> None:
    stream = Tty()
    progress_module.announce("nothing yet")
    progress_module.enable_status(stream)
    try:
        progress_module.announce("loading torch")
        progress_module.announce("building data")
    finally:
        progress_module.clear_status()
    progress_module.announce("after")
    assert stream.getvalue() == "\r\x1b[Kloading torch...\r\x1b[Kbuilding data...\r\x1b[K"


@pytest.mark.slow
def test_runner_run_on_a_terminal_says_what_it_does_before_torch_loads(toy_dir: Path) -> None:
    """The first output of ``runner run`` on a terminal comes before torch is imported."""
    import os
    import pty
    import select
    import subprocess
    import time

    from core_helpers import HERMETIC_ENV, runner_command

    leader, follower = pty.openpty()
    started = time.perf_counter()
    process = subprocess.Popen(
        [*runner_command(), "run", "toy.toml", "--run-dir", "out"],
        cwd=toy_dir,
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, **HERMETIC_ENV, "COLUMNS": "100"},
    )
    os.close(follower)
    output = b""
    first_at = None
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        first_at = first_at if first_at is not None else time.perf_counter() - started
        output += chunk
    process.communicate(timeout=120)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert text.startswith("\r\x1b[Kloading torch..."), text[:200]
    assert "building data..." in text and "building the model..." in text
    assert first_at is not None and first_at < 5.0  # about 0.2-0.4 s on an idle machine; loose for busy CI
    assert re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).rstrip().splitlines()[-1].startswith("val/main")
