"""Editor schema, ``runner explain``, ``runner plugins doctor`` and shell completion, against the toy plugin.

- the exported JSON Schema accepts the toy recipe, and a mutated recipe fails schema
  validation at the same key path ``runner recipe check`` reports;
- ``explain`` gives each parameter's source (default, file:line, ``-o``) and hook
  implementations in the order pluggy really calls them;
- ``doctor`` flags misspelt hooks, broken schemas, bad defaults and core version ranges;
- completion of recipe files and ``-o`` key paths through click's ShellComplete API.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from core_helpers import HERMETIC_ENV, TOY, TOY_PLUGIN, write

from runner._contract.errors import RecipeError
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._recipe.locate import locate
from runner._recipe.source import RecipeSource, format_path
from runner._recipe.validate import validate
from runner._schema.export import recipe_schema
from runner.hookspecs import hookimpl

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


# -- schema -----------------------------------------------------------------------------------


def schema_paths(schema: dict[str, Any], data: dict[str, Any]) -> set[str]:
    """Key paths of schema errors; an unexpected key is reported at the key itself."""
    validator = jsonschema.Draft202012Validator(schema)
    paths = set()
    for error in validator.iter_errors(data):
        for leaf in error.context or [error]:  # descend into if/then branches
            path = tuple(leaf.absolute_path)
            if leaf.validator == "additionalProperties":
                known = set(leaf.schema.get("properties", {}))
                for key in leaf.instance:
                    if key not in known:
                        paths.add(format_path((*path, key)))
            else:
                paths.add(format_path(path))
    return paths


def check_paths(data: dict[str, Any], manager: PluginManager, tmp_path: Path) -> set[str]:
    """Key paths ``runner recipe check`` reports for ``data``."""
    text = TOY  # locations are irrelevant here: only the key paths are compared
    source = RecipeSource(str(tmp_path / "toy.toml"), data, locate(text, "toy.toml"))
    with pytest.raises(RecipeError) as caught:
        validate(source, manager.registry, manager.failures)
    return {p.path for p in caught.value.problems}


def test_schema_is_valid_and_accepts_the_toy_recipe(toy_manager: PluginManager) -> None:
    schema = recipe_schema(toy_manager.registry)
    jsonschema.Draft202012Validator.check_schema(schema)
    data = tomllib.loads(TOY)
    data.pop("plugins")  # the schema describes the plugins already loaded
    data["plugins"] = ["toy_plugin.py"]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
        node[path[-1]] = value

    return mutate


MUTATIONS = {
    "run.epochs": _set(("run", "epochs"), "two"),
    "run.precision": _set(("run", "precision"), "fp8"),
    "run.log_every": _set(("run", "log_every"), 0),
    "run.devise": _set(("run", "devise"), "cpu"),
    "optimizer.lr": _set(("optimizer", "lr"), "fast"),
    "optimizer.momentun": _set(("optimizer", "momentun"), 0.9),
    "model.name": _set(("model", "name"), "lni"),
    "data.train.dataset.n": _set(("data", "train", "dataset", "n"), 1.5),
    "data.train.loader.batch_size": _set(("data", "train", "loader", "batch_size"), 0),
    "data.train.loader.shufle": _set(("data", "train", "loader", "shufle"), True),
    "data.val.main.dataset.split": _set(("data", "val", "main", "dataset", "split"), 3),
    "callbacks[0].name": _set(("callbacks",), [{"name": "stop_afterr"}]),
    "callbacks[0].steps": _set(("callbacks",), [{"name": "stop_after", "steps": "3"}]),
    "modle": _set(("modle",), {"name": "lin"}),
}


@pytest.mark.parametrize("expected", list(MUTATIONS))
def test_a_mutated_recipe_fails_the_schema_where_recipe_check_does(
    expected: str, toy_manager: PluginManager, tmp_path: Path
) -> None:
    data = tomllib.loads(TOY)
    MUTATIONS[expected](data)
    schema = recipe_schema(toy_manager.registry)
    assert check_paths(copy.deepcopy(data), toy_manager, tmp_path) == {expected}
    assert schema_paths(schema, data) == {expected}


def test_schema_carries_types_defaults_docs_and_names(toy_manager: PluginManager) -> None:
    schema = recipe_schema(toy_manager.registry)
    run = schema["properties"]["run"]["properties"]
    assert run["epochs"]["type"] == "integer" and run["epochs"]["minimum"] == 1
    assert run["precision"] == {**run["precision"], "enum": ["fp32", "bf16", "fp16"], "default": "fp32"}
    assert "Autocast precision" in run["precision"]["description"]
    datasets = schema["$defs"]["dataset"]
    assert datasets["properties"]["name"]["enum"] == ["toy", "toy_rows"]
    toy = next(b["then"] for b in datasets["allOf"] if b["if"]["properties"]["name"]["const"] == "toy")
    assert toy["additionalProperties"] is False and toy["properties"]["n"]["type"] == "integer"


@pytest.mark.slow  # starts processes
def test_schema_command_writes_the_file(cli: Callable[..., Any], toy_dir: Path) -> None:
    done = cli("-p", "toy_plugin.py", "recipe", "schema", "-o", "recipe.schema.json", cwd=toy_dir)
    assert done.returncode == 0, done.stderr
    schema = json.loads((toy_dir / "recipe.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "lin" in schema["$defs"]["model"]["properties"]["name"]["enum"]


# -- explain ----------------------------------------------------------------------------------


def explained(cli: Callable[..., Any], toy_dir: Path, *args: str) -> dict[str, Any]:
    done = cli("explain", "toy.toml", "--json", *args, cwd=toy_dir)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.slow  # starts processes
def test_explain_gives_the_source_of_every_value(cli: Callable[..., Any], toy_dir: Path) -> None:
    report = explained(cli, toy_dir, "-o", "optimizer.momentum=0.5")
    by_path = {c["path"]: c for c in report["components"]}
    optimizer = by_path["optimizer"]
    assert optimizer["provider"].endswith("toy_plugin.py local") and optimizer["name"] == "sgd"
    sources = {p["key"]: (p["value"], p["source"]) for p in optimizer["params"]}
    lr_line = TOY.splitlines().index("lr = 0.5") + 1
    assert sources == {"lr": (0.5, f"toy.toml:{lr_line}"), "momentum": (0.5, "-o optimizer.momentum=0.5")}
    run = {p["key"]: p["source"] for p in by_path["run"]["params"]}
    assert run["seed"] == "default" and run["epochs"].startswith("toy.toml:")
    assert by_path["data.train.loader"]["provider"] == "runner-core"


@pytest.mark.slow  # starts processes
def test_explain_text_output(cli: Callable[..., Any], toy_dir: Path) -> None:
    done = cli("explain", "toy.toml", cwd=toy_dir)
    assert done.returncode == 0, done.stderr
    assert "[optimizer] optimizer 'sgd' from " in done.stdout
    assert "hooks, implementations in call order:" in done.stdout


ORDERED = """
import calls_log
from runner import hookimpl


@hookimpl(trylast=True)
def on_begin_train(run):
    calls_log.CALLS.append("{name}:trylast")


@hookimpl(tryfirst=True)
def on_end_train(run, global_step):
    calls_log.CALLS.append("{name}:tryfirst")


@hookimpl(wrapper=True)
def on_log(run, record):
    calls_log.CALLS.append("{name}:wrapper")
    return (yield)
"""


class Watcher:
    """A run-time callback object: plain methods named like hooks."""

    def on_end_train(self, run: Any, global_step: int) -> None:
        import calls_log

        calls_log.CALLS.append("callback:watcher#0:plain")

    def on_log(self, run: Any, record: dict[str, Any]) -> None:
        import calls_log

        calls_log.CALLS.append("callback:watcher#0:plain")


class Watching:
    """A plugin object registering the watcher callback."""

    @hookimpl
    def register_callbacks(self, register: Any) -> None:
        register("watcher", Watcher)


def test_explain_lists_hooks_in_the_order_pluggy_calls_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner._cli.tools.explain import explain_hooks

    write(tmp_path / "calls_log.py", "CALLS = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import calls_log  # type: ignore[import-not-found]

    manager = PluginManager(local_plugins=[str(TOY_PLUGIN)], use_entry_points=False).load()
    for name in ("first", "second"):
        manager.load_local(str(write(tmp_path / f"{name}.py", ORDERED.replace("{name}", name))))
    manager.add(Watching(), PluginInfo("watching", "watching", "1"))
    text = TOY.replace('plugins = ["toy_plugin.py"]', "") + '\n[[callbacks]]\nname = "watcher"\n'
    source = RecipeSource("toy.toml", tomllib.loads(text), locate(text, "toy.toml"))
    order, notes = explain_hooks(validate(source, manager.registry, manager.failures), manager)
    assert notes == []
    # What pluggy really does, with the callback object registered as the engine registers it.
    manager.add_callback_object(Watcher(), PluginInfo("callback:watcher#0", "watching", "1"))

    def shown(hook: str) -> list[str]:
        return [f"{impl.owner}:{','.join(impl.flags) or 'plain'}" for impl in order[hook]]

    def called(hook: str, **kwargs: Any) -> list[str]:
        calls_log.CALLS.clear()
        manager.hook(hook)(run=None, **kwargs)
        return list(calls_log.CALLS)

    assert shown("on_begin_train") == called("on_begin_train") == ["first:trylast", "second:trylast"]
    assert (
        shown("on_end_train")
        == called("on_end_train", global_step=1)
        == ["second:tryfirst", "first:tryfirst", "callback:watcher#0:plain"]
    )
    wrapped = ["second:wrapper", "first:wrapper", "callback:watcher#0:plain"]
    assert shown("on_log") == called("on_log", record={}) == wrapped


# -- doctor -----------------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_doctor_is_quiet_on_healthy_plugins(cli: Callable[..., Any], toy_dir: Path) -> None:
    done = cli("-p", "toy_plugin.py", "plugins", "doctor", cwd=toy_dir)
    assert done.returncode == 0, done.stderr
    assert "no problems found" in done.stdout


MISSPELT = """
from runner import hookimpl


@hookimpl
def register_dataset(register):
    register("never", lambda: None)


@hookimpl
def register_models(register):
    register("broken", "no_such_module_anywhere:build")
"""


@pytest.mark.slow  # starts processes
def test_doctor_flags_misspelt_hooks_and_broken_schemas(fake_dists: Any) -> None:
    from runner._cli.tools.doctor import diagnose

    fake_dists("runner-misspelt", MISSPELT, version="0.3")
    manager = PluginManager()
    report = diagnose(manager)
    mine = [p for p in report.problems if "runner-misspelt" in p]
    assert mine == [
        "plugin runner-misspelt 0.3: register_dataset is not a runner hook (did you mean 'register_datasets'?)",
        "plugin runner-misspelt 0.3: model 'broken': its parameter schema does not build: PluginError: model "
        "'broken' from plugin runner-misspelt 0.3: cannot import 'no_such_module_anywhere:build': "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    ]


@pytest.mark.parametrize(
    ("requirement", "flagged"),
    [
        ("runner-core>=0.1,<0.2", False),
        ("runner-core", False),
        ("runner_core>=9", True),
        ("runner-core<0.1", True),
        ("runner-core>=9; python_version < '3'", False),
        ("numpy>=1", False),
    ],
)
def test_doctor_checks_the_declared_core_range(fake_dists: Any, requirement: str, flagged: bool) -> None:
    from runner._cli.tools.doctor import core_requirement_problem

    dist = fake_dists("runner-ranged", "")
    metadata_file = next(dist.site.glob("runner_ranged-*.dist-info")) / "METADATA"
    metadata_file.write_text(metadata_file.read_text() + f"Requires-Dist: {requirement}\n", encoding="utf-8")
    problem = core_requirement_problem(PluginInfo("ranged", "runner-ranged", "1.0"), core_version="0.1.0")
    assert (problem is not None) == flagged, problem
    if flagged:
        assert problem is not None and problem.startswith("plugin runner-ranged 1.0: needs runner-core")


# -- completion -------------------------------------------------------------------------------


@pytest.fixture
def complete(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """``complete(args, incomplete)`` → completion values, in ``toy_dir`` with the toy plugin."""
    from click.shell_completion import ShellComplete

    from runner._cli.main import cli

    monkeypatch.chdir(toy_dir)
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)

    def run(args: list[str], incomplete: str) -> list[str]:
        monkeypatch.setenv("COMP_WORDS", " ".join(["runner", *args, incomplete]))
        shell = ShellComplete(cli, {}, "runner", "_RUNNER_COMPLETE")
        return [item.value for item in shell.get_completions(["-p", "toy_plugin.py", *args], incomplete)]

    return run


def test_completes_commands(complete: Callable[..., list[str]]) -> None:
    assert {"explain", "new-plugin", "plugins", "recipe", "run"} <= set(complete([], ""))
    assert complete(["recipe"], "sc") == ["schema"]
    assert complete(["plugins"], "d") == ["doctor"]


def test_completes_recipe_files(complete: Callable[..., list[str]], toy_dir: Path) -> None:
    (toy_dir / "sub").mkdir()
    (toy_dir / "sub" / "other.toml").write_text("", encoding="utf-8")
    assert complete(["run"], "") == ["sub/", "toy.toml"]  # toy_plugin.py is not a recipe
    assert complete(["recipe", "check"], "sub/") == ["sub/other.toml"]


def test_completes_override_keys_of_the_recipe_components(complete: Callable[..., list[str]]) -> None:
    assert complete(["run", "toy.toml", "-o"], "optimizer.") == ["optimizer.name", "optimizer.lr", "optimizer.momentum"]
    assert "data.train.loader.batch_size" in complete(["explain", "toy.toml", "-o"], "data.train.lo")
    assert complete(["run", "toy.toml", "-o"], "run.precision=b") == ["run.precision=bf16"]
    assert complete(["run", "toy.toml", "-o"], "model.name=") == ["model.name=lin"]


def test_completes_override_keys_from_the_schema_without_a_recipe(complete: Callable[..., list[str]]) -> None:
    assert complete(["recipe", "show", "-o"], "run.ep") == ["run.epochs"]
    assert "callbacks.0.steps" in complete(["recipe", "show", "-o"], "callbacks.0.")


@pytest.mark.slow  # starts processes
def test_bash_completion_script_and_answers(cli: Callable[..., Any], toy_dir: Path) -> None:
    script = cli(env={"_RUNNER_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_runner_completion" in script.stdout
    words = "runner -p toy_plugin.py run toy.toml -o optimizer.m"
    done = cli(env={"_RUNNER_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": "6"}, cwd=toy_dir)
    assert done.stdout.split() == ["plain,optimizer.momentum"], done.stderr


def test_schema_export_survives_a_component_whose_lazy_parameters_fail_to_import(toy_manager: PluginManager) -> None:
    from runner._plugins.registry import Component

    broken = Component(
        kind="dataset",
        name="broken",
        factory_ref="no_such_module_xyz:build",
        plugin=PluginInfo(name="broken", dist="runner-broken", version="0.1"),
        params="no_such_module_xyz:Params",
    )
    toy_manager.registry.add(broken)
    datasets = recipe_schema(toy_manager.registry)["$defs"]["dataset"]
    then = next(b["then"] for b in datasets["allOf"] if b["if"]["properties"]["name"]["const"] == "broken")
    assert "additionalProperties" not in then  # open: anything is accepted rather than the export failing
    assert then["description"] == "(plugin runner-broken 0.1)"
