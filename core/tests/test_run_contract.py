"""The run contract a plugin sees: run objects receive hooks only in runs that chose them,
state is namespaced by owner, callbacks add metrics, the task may provide optimizers,
every built component is checked against its interface, and restored state is checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import TOY, TOY_PLUGIN, check_recipe

from runner._contract.errors import PluginError, RunnerError
from runner._engine.run import execute
from runner._plugins.manager import PluginManager

PLUGIN = r'''
import json
from pathlib import Path

from runner import Task, StepOutput, hookimpl

CALLS = []


class Remember:
    """A callback with state, under a key another plugin uses too."""

    def __init__(self, label="a"):
        self.label = label
        self.seen = 0

    def on_end_train_step(self, run, global_step):
        self.seen += 1

    def get_state(self, run):
        return {"count": self.seen, "label": self.label}

    def update_state(self, run, state):
        CALLS.append(("update", self.label, dict(state)))
        self.seen = state["count"]


class AddMetrics:
    """Adds a train metric every step and a whole-epoch metric to each validation record."""

    def on_end_backward(self, run, global_step, loss):
        run.log_metrics({"extra": float(global_step)})

    def on_end_val_epoch(self, run, key, metrics):
        run.log_metrics({"epoch_metric": 42.0}, stage="val")


class SelfOptimizing(Task):
    """A task that is also a callback, provides its optimizer and keeps state."""

    def __init__(self):
        self.epochs = []

    def train_step(self, model, batch, step):
        x, y = batch
        loss = __import__("torch").nn.functional.cross_entropy(model(x), y)
        return StepOutput(loss=loss, count=len(y))

    def val_step(self, model, batch, step):
        return self.train_step(model, batch, step)

    def on_begin_train_epoch(self, run, epoch):
        self.epochs.append(epoch)
        CALLS.append(("task epoch", epoch))

    def get_optimizers_schedulers(self, run, model):
        import torch

        CALLS.append(("task optimizer",))
        return [torch.optim.SGD(model.parameters(), lr=0.25)], []

    def get_state(self, run):
        return {"count": len(self.epochs)}


@hookimpl
def get_state(run):
    return {"count": -1}  # the same key as the callbacks: stored apart


@hookimpl
def get_optimizers_schedulers(run, model):
    CALLS.append(("plugin optimizer",))
    return None


CAPTURED = {}
ERRORS = []


class Grab:
    """At the end: capture, then restore a state whose first callback's count was changed."""

    def on_end_train(self, run):
        CAPTURED.update(run.capture_state())
        state = run.capture_state()
        state["plugins"]["callback:remember#0"]["count"] = 100
        run.restore_state(state)


class Tamper:
    """At the end: restore a state with edited counters; nothing may be restored."""

    def __init__(self, counters):
        self.counters = counters

    def on_end_train(self, run):
        state = run.capture_state()
        state["counters"].update(self.counters)
        before = run.position()
        try:
            run.restore_state(state)
        except Exception as exc:
            ERRORS.append((type(exc).__name__, str(exc)))
        assert run.position() == before


class NoBarrier:
    rank = 0
    world_size = 1
    is_primary = True

    def launch(self, worker, job):
        return worker(job, self)


@hookimpl
def register_callbacks(register):
    register("remember", Remember)
    register("add_metrics", AddMetrics)
    register("grab", Grab)
    register("tamper", Tamper)


@hookimpl
def register_tasks(register):
    register("self_optimizing", SelfOptimizing)


@hookimpl
def register_backends(register):
    register("no_barrier", NoBarrier)
'''


@pytest.fixture
def contract(write_plugin: Callable[[str, str], str]) -> tuple[PluginManager, Any]:
    import sys

    path = write_plugin("contract", PLUGIN)
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), path], use_entry_points=False).load()
    module = sys.modules["runner_local_contract"]
    module.CALLS.clear()
    return manager, module


def _run(manager: PluginManager, text: str, tmp_path: Path, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    recipe = check_recipe(text, manager, tmp_path, name=f"{name}.toml")
    execute(recipe, manager, tmp_path / name, show_progress=False, **kwargs)
    lines = (tmp_path / name / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_callbacks_add_metrics_to_train_and_val_records(contract: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, _ = contract
    records = _run(manager, TOY + '\n[[callbacks]]\nname = "add_metrics"\n', tmp_path, "metrics")
    train = [r for r in records if r["stage"] == "train"]
    assert [r["extra"] for r in train] == [float(r["step"] - 1) for r in train]  # the logged step's own value
    assert all(r["epoch_metric"] == 42.0 for r in records if r["stage"] == "val")
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text(encoding="utf-8"))
    assert summary["metrics"]["val/main"]["epoch_metric"] == 42.0


def test_the_task_is_a_callback_and_provides_optimizers_when_the_recipe_has_none(
    contract: tuple[PluginManager, Any], tmp_path: Path
) -> None:
    manager, module = contract
    no_optimizer = TOY.replace('[optimizer]\nname = "sgd"\nlr = 0.5\n', "").replace(
        'name = "cls"', 'name = "self_optimizing"'
    )
    assert "[optimizer]" not in no_optimizer
    records = _run(manager, no_optimizer, tmp_path, "task")
    assert ("task optimizer",) in module.CALLS and ("plugin optimizer",) not in module.CALLS  # the task answered first
    assert [c for c in module.CALLS if c[0] == "task epoch"] == [("task epoch", 0), ("task epoch", 1)]
    assert records[0]["lr"] == 0.25


def test_a_recipe_optimizer_wins_over_every_provider(contract: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, module = contract
    records = _run(manager, TOY.replace('name = "cls"', 'name = "self_optimizing"'), tmp_path, "recipe")
    assert not [c for c in module.CALLS if "optimizer" in c[0]]  # nobody was asked
    assert records[0]["lr"] == 0.5


def test_no_optimizer_and_no_provider_is_one_clear_error(contract: tuple[PluginManager, Any], tmp_path: Path) -> None:
    manager, _ = contract
    recipe = check_recipe(TOY.replace('[optimizer]\nname = "sgd"\nlr = 0.5\n', ""), manager, tmp_path)
    with pytest.raises(RunnerError, match=r"no \[optimizer\] table and neither the task"):
        execute(recipe, manager, tmp_path / "none", show_progress=False)
    assert _run(manager, TOY, tmp_path, "after")  # the failed run left the manager clean


def test_state_is_namespaced_by_owner_and_handed_back_to_it(
    contract: tuple[PluginManager, Any], tmp_path: Path
) -> None:
    manager, module = contract
    text = TOY.replace('name = "cls"', 'name = "self_optimizing"')
    text += '\n[[callbacks]]\nname = "remember"\nlabel = "a"\n\n[[callbacks]]\nname = "remember"\nlabel = "b"\n'
    text += '\n[[callbacks]]\nname = "grab"\n'
    _run(manager, text, tmp_path, "state")
    captured = module.CAPTURED
    plugins = captured["plugins"]
    assert plugins["callback:remember#0"] == {"count": 16, "label": "a"}
    assert plugins["callback:remember#1"] == {"count": 16, "label": "b"}
    assert plugins["task:self_optimizing"] == {"count": 2}
    assert plugins["contract"] == {"count": -1}  # the module-level hookimpl, under its plugin's name
    updates = [c for c in module.CALLS if c[0] == "update"]
    assert updates == [("update", "a", {"count": 100, "label": "a"}), ("update", "b", {"count": 16, "label": "b"})]


def test_a_component_missing_an_interface_method_is_named_at_build(
    contract: tuple[PluginManager, Any], tmp_path: Path
) -> None:
    manager, _ = contract
    recipe = check_recipe(TOY, manager, tmp_path, ("run.backend=no_barrier",))
    with pytest.raises(PluginError) as caught:
        execute(recipe, manager, tmp_path / "bad", show_progress=False)
    message = str(caught.value)
    assert message.startswith("backend 'no_barrier' (plugin ")
    assert "does not implement runner's backend interface: missing device(), wrap_model()" in message
    assert "barrier()" in message


@pytest.mark.parametrize(
    ("counters", "problem"),
    [
        ({"global_step": -5}, "counter 'global_step' = -5 is out of range"),
        ({"global_step": 1e30}, "counter 'global_step' = 1e+30 is out of range"),
        ({"epoch": "three"}, "counter 'epoch' is 'three', not a number"),
    ],
)
def test_restored_counters_are_range_checked(
    contract: tuple[PluginManager, Any], tmp_path: Path, counters: dict[str, Any], problem: str
) -> None:
    manager, module = contract
    module.ERRORS.clear()
    table = ", ".join(f"{key} = {json.dumps(value)}" for key, value in counters.items())
    _run(manager, TOY + f'\n[[callbacks]]\nname = "tamper"\ncounters = {{ {table} }}\n', tmp_path, "tamper")
    errors = [message for kind, message in module.ERRORS if kind == "RunnerError"]
    assert errors and problem in errors[0]


def test_check_components_names_a_missing_interface_method(runner_tester: Any) -> None:
    import types

    from runner import hookimpl

    plugin = types.ModuleType("half_done")

    class NotCallable:
        """A collate that forgot ``__call__``."""

    @hookimpl
    def register_collates(register: Any) -> None:
        register("broken", NotCallable)

    plugin.register_collates = register_collates  # type: ignore[attr-defined]
    assert runner_tester.check_components(plugin) == [
        "collate 'broken' does not implement runner's collate interface: missing __call__"
    ]
