"""Validating recipes against the core schema and registered components (runner._recipe.validate).

Everything is checked before anything runs; every problem is reported at once, each as
``file:line:col: key.path: message`` with what was expected and what was found.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from core_helpers import TOY, TOY_PLUGIN, FakeDist, check_recipe, recipe_problems

from runner._contract.recipe import LoaderConfig, RunConfig
from runner._plugins.manager import PluginManager
from runner._recipe.render import render
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate


def test_the_toy_recipe_is_valid(toy_manager: PluginManager, tmp_path: Path) -> None:
    recipe = check_recipe(TOY, toy_manager, tmp_path)
    assert recipe.run == RunConfig(name="toy", epochs=2, log_every=2)
    assert recipe.train is not None and recipe.train.dataset.name == "toy"
    assert recipe.train.loader == LoaderConfig(batch_size=8, shuffle=True)
    assert list(recipe.val) == ["main"] and recipe.test == {}
    assert (recipe.model.name, recipe.task.name, recipe.optimizer.name, recipe.backend.name) == (
        "lin",
        "cls",
        "sgd",
        "single",
    )
    assert recipe.plugins == ("toy_plugin.py",)
    assert [c.path for c in recipe.components()] == [
        "data.train.dataset",
        "data.val.main.dataset",
        "model",
        "task",
        "optimizer",
        "backend",
    ]


def test_resolved_recipe_spells_out_every_default(toy_manager: PluginManager, tmp_path: Path) -> None:
    resolved = check_recipe(TOY, toy_manager, tmp_path).resolved
    assert resolved["run"] == attrs.asdict(RunConfig(name="toy", epochs=2, log_every=2))
    assert (resolved["run"]["seed"], resolved["run"]["device"], resolved["run"]["grad_accum"]) == (0, "auto", 1)
    assert resolved["run"]["max_steps"] is None  # unset options stay in the tree (render leaves them out)
    assert resolved["data"]["train"]["dataset"] == {"name": "toy", "split": "train", "n": 64, "features": 4}
    assert resolved["data"]["train"]["loader"] == attrs.asdict(LoaderConfig(batch_size=8, shuffle=True))
    assert resolved["data"]["val"]["main"]["dataset"] == {"name": "toy", "split": "val", "n": 32, "features": 4}
    assert resolved["model"] == {"name": "lin", "hidden": 0}
    assert resolved["task"] == {"name": "cls"}
    assert resolved["optimizer"] == {"name": "sgd", "lr": 0.5, "momentum": 0.0}
    assert resolved["backend"] == {}
    assert resolved["plugins"] == ["toy_plugin.py"]


def test_every_problem_is_reported_at_once_with_location_expected_and_found(
    toy_manager: PluginManager, tmp_path: Path
) -> None:
    text = """\
        [run]
        name = "toy"
        epoch = 3
        log_every = "5"
        device = "gpu"

        [data.train]
        dataset = { name = "tyo" }
        loader = { batch_size = 0, shufle = true }

        [data.val.main]
        dataset = { name = "toy", split = "valid", n = "x" }

        [model]
        name = "lin"
        hiden = 3

        [task]
        name = "cls"

        [optimzer]
        name = "sgd"
    """
    problems = recipe_problems(text, toy_manager, tmp_path)
    file = str(tmp_path / "recipe.toml")
    assert problems == [
        f"{file}:1:1: run: set run.epochs or run.max_steps (expected int)",
        f"{file}:3:1: run.epoch: unknown key (did you mean 'epochs'?)",
        f"{file}:4:1: run.log_every: expected int, found str '5'",
        f"{file}:5:1: run.device: expected one of auto, cpu, cuda, cuda:\\d+, mps, found 'gpu'",
        f"{file}:8:13: data.train.dataset.name: unknown dataset 'tyo' (did you mean 'toy'?)",
        f"{file}:9:12: data.train.loader.batch_size: must be at least 1, found 0",
        f"{file}:9:28: data.train.loader.shufle: unknown key (did you mean 'shuffle'?)",
        # problems on one line are ordered by column
        f"{file}:12:27: data.val.main.dataset.split: expected one of 'train', 'val', 'test', found str 'valid' "
        "(did you mean 'val'?)",
        f"{file}:12:44: data.val.main.dataset.n: expected int, found str 'x'",
        f"{file}:16:1: model.hiden: unknown key (did you mean 'hidden'?)",
        f"{file}:21:1: optimzer: unknown key (did you mean 'optimizer'?)",
    ]


def test_an_invalid_run_value_does_not_hide_other_run_problems(toy_manager: PluginManager, tmp_path: Path) -> None:
    # log_every is wrong AND the backend is unknown: both must be reported, and epochs is set.
    text = TOY.replace("log_every = 2", 'log_every = "2"\nbackend = "ddp"')
    problems = recipe_problems(text, toy_manager, tmp_path)
    file = str(tmp_path / "recipe.toml")
    assert problems == [
        f"{file}:7:1: run.log_every: expected int, found str '2'",
        f"{file}:8:1: run.backend: unknown backend 'ddp'; registered backends: single; "
        "it is provided by runner-ddp: pip install runner-ddp",
    ]


@pytest.mark.parametrize(
    ("value", "message"), [("0", "must be at least 1, found 0"), ('"2"', "expected int, found str '2'")]
)
def test_an_invalid_epochs_is_not_also_reported_as_missing(
    toy_manager: PluginManager, tmp_path: Path, value: str, message: str
) -> None:
    problems = recipe_problems(TOY.replace("epochs = 2", f"epochs = {value}"), toy_manager, tmp_path)
    assert problems == [f"{tmp_path / 'recipe.toml'}:6:1: run.epochs: {message}"]


def test_max_steps_alone_is_enough(toy_manager: PluginManager, tmp_path: Path) -> None:
    recipe = check_recipe(TOY.replace("epochs = 2", "max_steps = 5"), toy_manager, tmp_path)
    assert (recipe.run.epochs, recipe.run.max_steps) == (None, 5)


def test_neither_epochs_nor_max_steps(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY.replace("epochs = 2\n", ""), toy_manager, tmp_path)
    assert problems == [f"{tmp_path / 'recipe.toml'}:4:1: run: set run.epochs or run.max_steps (expected int)"]


def test_unknown_backend_is_reported_once_with_an_install_hint(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY.replace("log_every = 2", 'log_every = 2\nbackend = "ddp"'), toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:8:1: run.backend: unknown backend 'ddp'; registered backends: single; "
        "it is provided by runner-ddp: pip install runner-ddp"
    ]


def test_backend_name_belongs_in_run(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY + '\n[backend]\nname = "single"\n', toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:28:1: backend.name: choose the backend with [run] backend = NAME; "
        "[backend] holds its parameters"
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name = "lin"', 'name = "lni"', "model.name: unknown model 'lni' (did you mean 'lin'?)"),
        ('name = "lin"', 'name = "zzz"', "model.name: unknown model 'zzz'; registered models: lin"),
        (
            'name = "sgd"',
            'name = "adamw"',
            "optimizer.name: unknown optimizer 'adamw'; registered optimizers: sgd; "
            "it is provided by runner-models: pip install runner-models; its parameters (lr) are not checked",
        ),
        ('name = "cls"', "name = 3", "task.name: expected str, found int 3"),
        ('name = "cls"', 'nam = "cls"', "task: missing required key 'name' (a registered task)"),
    ],
)
def test_component_names(toy_manager: PluginManager, tmp_path: Path, old: str, new: str, message: str) -> None:
    [problem] = recipe_problems(TOY.replace(old, new), toy_manager, tmp_path)
    assert problem.split(": ", 1)[1] == message


def test_unknown_component_mentions_plugins_that_failed_to_load(
    fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_dists("runner-vision", "raise ImportError('No module named torchvision')", version="2.1")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-vision")
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN)]).load()
    [problem] = recipe_problems(TOY.replace('name = "lin"', 'name = "resnet"'), manager, tmp_path)
    assert problem.endswith(
        "model.name: unknown model 'resnet'; registered models: lin; "
        "note: plugin runner-vision 2.1 failed to load: ImportError: No module named torchvision"
    )


@pytest.mark.parametrize("table", ["[model]", "[task]"])
def test_missing_component_tables(toy_manager: PluginManager, tmp_path: Path, table: str) -> None:
    kind = table.strip("[]")
    start = TOY.index(table)
    end = TOY.find("[", start + len(table))
    text = TOY[:start] + (TOY[end:] if end != -1 else "")
    problems = recipe_problems(text, toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}: {kind}: missing required table [{kind}] with name = a registered {kind}"
    ]


def test_optimizer_is_optional_but_a_scheduler_needs_one(toy_manager: PluginManager, tmp_path: Path) -> None:
    start = TOY.index("[optimizer]")
    without = TOY[:start]
    assert check_recipe(without, toy_manager, tmp_path).optimizer is None  # the task may provide them
    problems = recipe_problems(without + '\n[scheduler]\nname = "nope"\n', toy_manager, tmp_path)
    assert any(p.endswith("scheduler: a [scheduler] needs an [optimizer] table to schedule") for p in problems)


def test_missing_training_data(toy_manager: PluginManager, tmp_path: Path) -> None:
    start, end = TOY.index("[data.train]"), TOY.index("[data.val.main]")
    problems = recipe_problems(TOY[:start] + TOY[end:], toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:9:1: data: missing required table [data.train] (or a [datamodule])"
    ]


def test_a_split_needs_a_dataset_and_known_keys(toy_manager: PluginManager, tmp_path: Path) -> None:
    text = TOY.replace('dataset = { name = "toy", split = "val", n = 32 }', "datset = { name = 'toy' }").replace(
        "loader = { batch_size = 16 }", "loader = { batch_sise = 16 }"
    )
    problems = recipe_problems(text, toy_manager, tmp_path)
    file = tmp_path / "recipe.toml"
    assert problems == [
        f"{file}:13:1: data.val.main: missing required key 'dataset' (a table with name = a registered dataset)",
        f"{file}:14:1: data.val.main.datset: unknown key (did you mean 'dataset'?)",
        f"{file}:15:12: data.val.main.loader.batch_sise: unknown key (did you mean 'batch_size'?)",
    ]


def test_keyed_validation_loaders(toy_manager: PluginManager, tmp_path: Path) -> None:
    text = (
        TOY
        + """
[data.val.small]
dataset = { name = "toy", split = "val", n = 8 }

[data.test.held_out]
dataset = { name = "toy_rows", split = "test" }
"""
    )
    recipe = check_recipe(text, toy_manager, tmp_path)
    assert list(recipe.val) == ["main", "small"]
    assert recipe.val["small"].key == "small" and recipe.val["small"].dataset.params["n"] == 8
    assert recipe.val["small"].loader == LoaderConfig()
    assert list(recipe.test) == ["held_out"]
    assert recipe.test["held_out"].dataset.path == "data.test.held_out.dataset"


def test_validation_loaders_must_be_keyed(toy_manager: PluginManager, tmp_path: Path) -> None:
    text = TOY.replace("[data.val.main]", "[data.val]")
    problems = recipe_problems(text, toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:13:1: data.val: expected loaders by key, e.g. [data.val.main] with dataset = ..."
    ]


def test_unknown_data_section(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY + "\n[data.valid.main]\ndataset = { name = 'toy' }\n", toy_manager, tmp_path)
    assert problems == [f"{tmp_path / 'recipe.toml'}:27:1: data.valid: unknown key (did you mean 'val'?)"]


def test_callbacks_must_be_an_array_of_tables(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems('callbacks = "probe"\n' + TOY, toy_manager, tmp_path)
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:1:1: callbacks: expected array of tables ([[callbacks]]), found str 'probe'"
    ]


def test_problems_inside_arrays_of_tables_name_the_index(toy_manager: PluginManager, tmp_path: Path) -> None:
    text = TOY + '\n[[callbacks]]\nname = "probe"\n\n[[callbacks]]\nname = "stop_after"\nstep = 3\n'
    problems = recipe_problems(text, toy_manager, tmp_path)
    file = tmp_path / "recipe.toml"
    assert problems == [
        f"{file}:30:1: callbacks[1].steps: missing required key (expected int)",
        f"{file}:32:1: callbacks[1].step: unknown key (did you mean 'steps'?)",
    ]


def test_plugins_must_be_a_list_of_strings(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY.replace('plugins = ["toy_plugin.py"]', "plugins = 3"), toy_manager, tmp_path)
    assert problems == [f"{tmp_path / 'recipe.toml'}:2:1: plugins: expected list of str, found int 3"]


def test_unreadable_component_schema_is_a_problem_not_a_crash(
    write_plugin: Callable[[str, str], str], tmp_path: Path
) -> None:
    lazy = write_plugin(
        "lazy",
        """
        from runner import hookimpl

        @hookimpl
        def register_models(register):
            register("broken", "no_such_module_anywhere:factory")
        """,
    )
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), lazy], use_entry_points=False)
    [problem] = recipe_problems(TOY.replace('name = "lin"', 'name = "broken"'), manager, tmp_path)
    assert "model.name: cannot read parameters of model 'broken' (" in problem
    assert "cannot import 'no_such_module_anywhere:factory': ModuleNotFoundError" in problem


def test_override_problems_are_located_on_the_command_line(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(
        TOY, toy_manager, tmp_path, overrides=("run.epochs=0", "model.hidden=wide", "optimizer.lr=0.1")
    )
    assert problems == [
        "<command line> -o model.hidden=wide: model.hidden: expected int, found str 'wide'",
        "<command line> -o run.epochs=0: run.epochs: must be at least 1, found 0",
    ]


def test_file_problems_come_before_command_line_problems(toy_manager: PluginManager, tmp_path: Path) -> None:
    problems = recipe_problems(TOY.replace("log_every = 2", "log_every = 0"), toy_manager, tmp_path, ("run.seed=x",))
    assert problems == [
        f"{tmp_path / 'recipe.toml'}:7:1: run.log_every: must be at least 1, found 0",
        "<command line> -o run.seed=x: run.seed: expected int, found str 'x'",
    ]


# -- resolved recipes round-trip through TOML -------------------------------------------

RICH_PLUGIN = """
    import enum
    import pathlib

    import attrs

    from runner import at_least, hookimpl, param


    class Mode(enum.Enum):
        FAST = "fast"
        SLOW = "slow"


    @attrs.define
    class Init:
        scale: float = param(1.0, check=at_least(0))
        kind: str = param("normal")


    @attrs.define
    class RichParams:
        root: pathlib.Path = param(pathlib.Path("data"))
        mode: Mode = param(Mode.FAST)
        init: Init = param(attrs.Factory(Init))
        layers: list[Init] = param(attrs.Factory(list))
        pair: tuple[int, int] = param((1, 2))
        tags: dict[str, float] = param(attrs.Factory(dict))
        limit: int | None = param(None)


    def rich(**params):
        raise AssertionError("validation never builds components")


    @hookimpl
    def register_models(register):
        register("rich", rich, params=RichParams)
"""


def round_trip(text: str, manager: PluginManager, tmp_path: Path) -> tuple[dict[str, object], dict[str, object]]:
    first = check_recipe(text, manager, tmp_path, name="original.toml")
    shown = tmp_path / "shown.toml"
    shown.write_text(render(first.resolved), encoding="utf-8")
    second = validate(read_recipe(shown), manager.registry)
    return first.resolved, second.resolved


def test_shown_recipe_revalidates_to_the_same_tree(toy_manager: PluginManager, tmp_path: Path) -> None:
    text = TOY + '\n[[callbacks]]\nname = "stop_after"\nsteps = 3\n\n[[callbacks]]\nname = "probe"\n'
    first, second = round_trip(text, toy_manager, tmp_path)
    assert first == second
    assert first["callbacks"] == [{"name": "stop_after", "steps": 3}, {"name": "probe", "file": "probe.json"}]


def test_round_trip_with_paths_enums_nested_tables_and_unset_options(
    write_plugin: Callable[[str, str], str], tmp_path: Path
) -> None:
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN), write_plugin("rich", RICH_PLUGIN)], use_entry_points=False)
    text = TOY.replace(
        'name = "lin"',
        'name = "rich"\nmode = "slow"\nroot = "ROOT"\ninit = { scale = 2 }\nlayers = [{ kind = "zeros" }]\n'
        "pair = [3, 4]\ntags = { a = 1 }".replace("ROOT", str(tmp_path)),
    )
    first, second = round_trip(text, manager, tmp_path)
    assert first == second
    model = first["model"]
    assert isinstance(model, dict)
    assert model["mode"].value == "slow"
    assert model["root"] == tmp_path  # a path parameter: it must exist
    assert model["pair"] == (3, 4)
    assert model["limit"] is None
    shown = render(first)
    assert 'mode = "slow"' in shown and f'root = "{tmp_path}"' in shown and "limit" not in shown
    module = sys.modules["runner_local_rich"]
    assert model["init"] == module.Init(scale=2.0, kind="normal")
