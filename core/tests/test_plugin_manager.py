"""Finding, loading and calling plugins (runner._plugins.manager.PluginManager).

Plugins here are real: fake installed distributions (a dist-info with a ``runner`` entry
point on ``sys.path``, found by importlib.metadata) and ``.py`` files loaded with ``-p``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from core_helpers import TOY_PLUGIN, FakeDist

from runner._contract.errors import PluginError
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._plugins.registry import UnknownComponentError

GOOD = """
from runner import hookimpl

@hookimpl
def register_models(register):
    register("good_model", lambda: None, doc="A model from a healthy plugin.")
"""

BROKEN = """
raise ImportError("No module named 'torchvision'")
"""


def only(*dists: str) -> str:
    return ",".join(dists)


@pytest.fixture
def good_and_broken(fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch) -> tuple[FakeDist, FakeDist]:
    good = fake_dists("runner-good", GOOD, version="1.2")
    broken = fake_dists("runner-broken", BROKEN, version="0.3")
    monkeypatch.setenv("RUNNER_PLUGINS", only("runner-good", "runner-broken"))
    return good, broken


# -- discovery and loading -----------------------------------------------------------


def test_builtins_always_load() -> None:
    manager = PluginManager(use_entry_points=False)
    assert [str(p) for p in manager.plugins()] == ["runner-core 0.1.0"]
    assert manager.registry.names("backend") == ["single"]
    assert {"random", "sequential"} <= set(manager.registry.names("sampler"))
    assert {"plugins", "recipe", "run"} <= set(manager.registry.commands)


def test_discovery_reads_metadata_without_importing(good_and_broken: tuple[FakeDist, FakeDist]) -> None:
    good, broken = good_and_broken
    found = {info.dist: info for _, info in PluginManager.discover()}
    assert found["runner-good"] == PluginInfo(name="runner-good", dist="runner-good", version="1.2")
    assert found["runner-broken"].version == "0.3"
    assert good.module not in sys.modules and broken.module not in sys.modules


def test_a_plugin_failing_at_import_is_recorded_and_the_others_still_load(
    good_and_broken: tuple[FakeDist, FakeDist],
) -> None:
    manager = PluginManager().load()
    assert [str(f) for f in manager.failures] == [
        "plugin runner-broken 0.3 failed to load: ImportError: No module named 'torchvision'"
    ]
    assert [p.dist for p in manager.plugins()] == ["runner-core", "runner-good"]
    component = manager.registry.get("model", "good_model")
    assert str(component.plugin) == "runner-good 1.2"
    assert component.summary == "A model from a healthy plugin."


def test_plugins_import_once(good_and_broken: tuple[FakeDist, FakeDist]) -> None:
    manager = PluginManager()
    assert manager.load() is manager.load()
    assert len(manager.failures) == 1


def test_a_hookimpl_with_a_wrong_signature_is_a_load_failure(
    fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = """
        from runner import hookimpl

        @hookimpl
        def register_datasets(register):  # fine, and checked before the typo
            register("half", object)

        @hookimpl
        def register_models(registry):  # the argument is called register
            pass
    """
    fake_dists("runner-typo", typo)
    fake_dists("runner-good", GOOD)
    monkeypatch.setenv("RUNNER_PLUGINS", only("runner-typo", "runner-good"))
    manager = PluginManager().load()
    [failure] = manager.failures
    assert str(failure).startswith("plugin runner-typo 1.0 failed to load: PluginValidationError: ")
    assert "{'registry'}" in failure.error and "\n" not in failure.error
    assert manager.registry.names("model") == ["good_model"]
    assert manager.registry.names("dataset") == []  # nothing of the failed plugin is half-registered


def test_a_local_plugin_with_a_wrong_signature_is_a_plugin_error(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin("typo", "from runner import hookimpl\n\n@hookimpl\ndef on_log(run, records):\n    pass\n")
    with pytest.raises(PluginError, match=r"^plugin .*typo\.py local failed to load: PluginValidationError: .*records"):
        PluginManager(local_plugins=[path], use_entry_points=False).load()


@pytest.mark.parametrize("variable", ["RUNNER_DISABLE_PLUGINS", "RUNNER_PLUGINS"])
def test_environment_selects_plugins_by_distribution_or_entry_point_name(
    fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    fake_dists("runner-good", GOOD, entry_point="good")
    fake_dists("runner-broken", BROKEN, entry_point="broken")
    if variable == "RUNNER_DISABLE_PLUGINS":
        monkeypatch.setenv("RUNNER_PLUGINS", only("good", "runner-broken"))
        monkeypatch.setenv(variable, " runner-broken , other ")
    else:
        monkeypatch.setenv(variable, "good")  # the entry point's name works as well as the distribution's
    manager = PluginManager().load()
    assert [p.dist for p in manager.plugins()] == ["runner-core", "runner-good"]
    assert manager.failures == []


def test_disable_env_accepts_entry_point_names(
    good_and_broken: tuple[FakeDist, FakeDist], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_DISABLE_PLUGINS", "runner-good")
    manager = PluginManager().load()
    assert [p.dist for p in manager.plugins()] == ["runner-core"]
    assert len(manager.failures) == 1


def test_no_prefix_disables_an_installed_plugin(good_and_broken: tuple[FakeDist, FakeDist]) -> None:
    manager = PluginManager(local_plugins=["no:runner-broken", str(TOY_PLUGIN)]).load()
    assert manager.failures == []
    assert [p.name for p in manager.plugins()] == ["runner", "runner-good", "toy_plugin"]


def test_disabled_argument(good_and_broken: tuple[FakeDist, FakeDist]) -> None:
    manager = PluginManager(disabled=["runner-broken", "runner-good"]).load()
    assert [p.dist for p in manager.plugins()] == ["runner-core"] and manager.failures == []


def test_two_installed_plugins_with_the_same_entry_point_name_both_load(
    fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin is (distribution, entry-point name): a newcomer named like runner-models'
    entry point ``models`` neither breaks it nor gets it blamed."""
    fake_dists("runner-a", GOOD, entry_point="same")
    fake_dists("runner-b", GOOD.replace("good_model", "other_model"), entry_point="same")
    monkeypatch.setenv("RUNNER_PLUGINS", "same")
    manager = PluginManager().load()
    assert manager.failures == []
    assert [(p.name, p.dist) for p in manager.plugins()] == [
        ("runner", "runner-core"),
        ("same", "runner-a"),
        ("same", "runner-b"),
    ]
    assert str(manager.registry.get("model", "good_model").plugin) == "runner-a 1.0"
    assert str(manager.registry.get("model", "other_model").plugin) == "runner-b 1.0"
    assert [c.name for c in manager.registry.by_plugin(manager.plugins()[2])] == ["other_model"]
    assert manager.hooks_of(manager.plugins()[2]) == ["register_models"]

    monkeypatch.setenv("RUNNER_DISABLE_PLUGINS", "runner-a")  # the distribution picks one of the two
    assert [p.dist for p in PluginManager().plugins()] == ["runner-core", "runner-b"]


# -- local (-p) plugins --------------------------------------------------------------


def test_local_plugin_file_is_named_after_its_stem() -> None:
    manager = PluginManager(local_plugins=[str(TOY_PLUGIN)], use_entry_points=False).load()
    info = manager.plugins()[-1]
    assert info == PluginInfo(name="toy_plugin", dist=str(TOY_PLUGIN), version="local")
    assert manager.registry.names("dataset") == ["toy", "toy_rows"]
    assert manager.hooks_of("toy_plugin") == [
        "register_callbacks",
        "register_datasets",
        "register_models",
        "register_optimizers",
        "register_tasks",
    ]


def test_local_plugin_by_module_name(write_plugin: Callable[[str, str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_plugin("mod_plugin_for_tests", GOOD)
    monkeypatch.syspath_prepend(str(path.rsplit("/", 1)[0]))
    monkeypatch.delitem(sys.modules, "mod_plugin_for_tests", raising=False)
    manager = PluginManager(local_plugins=["mod_plugin_for_tests"], use_entry_points=False).load()
    assert manager.plugins()[-1] == PluginInfo("mod_plugin_for_tests", "mod_plugin_for_tests", "local")
    assert manager.registry.names("model") == ["good_model"]


def test_missing_local_plugin_file(tmp_path: Any) -> None:
    with pytest.raises(PluginError, match=r"^plugin file .*missing\.py not found$"):
        PluginManager(local_plugins=[str(tmp_path / "missing.py")], use_entry_points=False).load()


def test_local_plugin_failing_at_import(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin("broken", BROKEN)
    with pytest.raises(PluginError) as caught:
        PluginManager(local_plugins=[path], use_entry_points=False).load()
    assert str(caught.value) == f"plugin {path} failed to load: ImportError: No module named 'torchvision'"


def test_load_local_adds_a_plugin_after_loading(write_plugin: Callable[[str, str], str]) -> None:
    manager = PluginManager(use_entry_points=False)
    assert manager.registry.names("model") == []
    manager.load_local(write_plugin("good", GOOD))
    manager.load_local(write_plugin("good", GOOD))  # the same spec again is a no-op
    assert manager.registry.names("model") == ["good_model"]


def test_two_local_plugins_with_the_same_name_both_load(write_plugin: Callable[[str, str], str], tmp_path: Any) -> None:
    first = write_plugin("same", GOOD)
    second = str(tmp_path / "other" / "same.py")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "same.py").write_text("", encoding="utf-8")
    manager = PluginManager(local_plugins=[first, second], use_entry_points=False).load()
    assert [p.dist for p in manager.plugins()] == ["runner-core", first, second]
    assert manager.registry.names("model") == ["good_model"]


def test_the_same_local_plugin_twice_is_loaded_once(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin("good", GOOD)
    manager = PluginManager(local_plugins=[path, path], use_entry_points=False)
    assert [p.dist for p in manager.plugins()] == ["runner-core", path]
    module = sys.modules["runner_local_good"]
    with pytest.raises(PluginError, match=r"^plugin .*good\.py local \('good'\) is loaded twice$"):
        manager.add(module, manager.plugins()[-1])


# -- registration ----------------------------------------------------------------------


def test_a_component_name_two_plugins_register_is_a_clash_that_stops_nothing_else(
    fake_dists: Callable[..., FakeDist], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists("runner-first", GOOD, version="1.0")
    fake_dists("runner-second", GOOD + ONE_MORE, version="2.0")
    monkeypatch.setenv("RUNNER_PLUGINS", only("runner-first", "runner-second"))
    manager = PluginManager().load()
    registry = manager.registry
    clash = (
        "model 'good_model' is registered by 2 plugins, runner-first 1.0 and runner-second 2.0: uninstall one, "
        "or disable it: -p no:runner-second (or RUNNER_DISABLE_PLUGINS=runner-second)"
    )
    assert registry.clashes() == [clash] and manager.warnings() == [clash]
    assert manager.failures == []
    # Neither is picked; everything else still resolves.
    assert registry.find("model", "good_model") is None and registry.names("model") == []
    assert registry.names("task") == ["spare_task"]
    with pytest.raises(UnknownComponentError) as caught:
        registry.get("model", "good_model")
    assert str(caught.value) == clash
    # Both plugins still list what they registered.
    assert [str(c.plugin) for c in registry if c.name == "good_model"] == ["runner-first 1.0", "runner-second 2.0"]

    monkeypatch.setenv("RUNNER_DISABLE_PLUGINS", "runner-second")
    assert PluginManager().registry.get("model", "good_model").plugin.dist == "runner-first"


ONE_MORE = """
@hookimpl
def register_tasks(register):
    register("spare_task", lambda: None)
"""


def test_a_clash_disappears_when_one_side_fails_to_register(write_plugin: Callable[[str, str], str]) -> None:
    good = write_plugin("good", GOOD)
    late_failure = GOOD + "\n@hookimpl\ndef register_commands(register):\n    raise RuntimeError('no')\n"
    failing = write_plugin("failing", late_failure)
    manager = PluginManager(local_plugins=[good, failing], use_entry_points=False)
    assert manager.registry.clashes() == []
    assert str(manager.registry.get("model", "good_model").plugin) == f"{good} local"
    assert [f.plugin.dist for f in manager.failures] == [failing]


def test_a_plugin_registering_one_name_twice_fails_to_load(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin("twice", GOOD.replace("    register(", "    register('good_model', object)\n    register("))
    manager = PluginManager(local_plugins=[path], use_entry_points=False)
    [failure] = manager.failures
    assert failure.error == f"hook register_models: plugin {path} local registers model 'good_model' twice"
    assert manager.registry.names("model") == []


def test_a_command_name_two_plugins_register_is_a_clash(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin(
        "cmd",
        "from runner import hookimpl\n\n@hookimpl\ndef register_commands(register):\n    register('run', 'x:y')\n",
    )
    registry = PluginManager(local_plugins=[path], use_entry_points=False).registry
    clash = (  # neither the core nor a -p plugin can be disabled
        f"command 'run' is registered by 2 plugins, runner-core 0.1.0 and {path} local: "
        "load only one of them (-p, or the recipe's plugins list)"
    )
    assert registry.clashes() == [clash] and registry.command_clash("run") == clash
    assert "run" not in registry.commands and "run" in registry.command_names()
    assert {"plugins", "recipe"} <= set(registry.commands)


def test_a_raising_registration_hook_names_its_plugin(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin(
        "raising",
        """
        from runner import hookimpl

        def index():
            raise RuntimeError("dataset index unreachable")

        @hookimpl
        def register_datasets(register):
            index()
        """,
    )
    manager = PluginManager(local_plugins=[path], use_entry_points=False).load()
    assert manager.registry.names("dataset") == []
    assert [str(f) for f in manager.failures] == [
        f"plugin {path} local failed to load: hook register_datasets raised RuntimeError: dataset index unreachable"
    ]


@pytest.mark.parametrize("name", ["", 3, None])
def test_component_names_must_be_non_empty_strings(write_plugin: Callable[[str, str], str], name: Any) -> None:
    path = write_plugin(
        "badname",
        f"from runner import hookimpl\n\n@hookimpl\ndef register_tasks(register):\n    register({name!r}, object)\n",
    )
    manager = PluginManager(local_plugins=[path], use_entry_points=False)
    (failure,) = manager.failures
    assert f"task names must be non-empty strings, got {name!r}" in failure.error
    assert manager.registry.names("task") == []


def test_check_pending_flags_misspelt_hooks(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin(
        "typos",
        """
        from runner import hookimpl

        @hookimpl
        def register_model(register):
            pass

        @hookimpl
        def on_end_epoch(run):
            pass

        @hookimpl
        def register_models(register):
            pass
        """,
    )
    manager = PluginManager(local_plugins=[path], use_entry_points=False).load()
    assert sorted(manager.check_pending()) == [
        f"plugin {path} local: on_end_epoch is not a runner hook (did you mean 'on_end_val_epoch'?)",
        f"plugin {path} local: register_model is not a runner hook (did you mean 'register_models'?)",
    ]
    assert manager.warnings() == manager.check_pending()  # warnings the CLI prints on every command


def test_check_pending_is_empty_for_correct_plugins() -> None:
    assert PluginManager(local_plugins=[str(TOY_PLUGIN)], use_entry_points=False).load().check_pending() == []


# -- calling hooks ---------------------------------------------------------------------

HOOKS = """
from runner import hookimpl

CALLS = []

def helper(recipe):
    raise KeyError(recipe)

@hookimpl
def prepare_data(recipe):
    CALLS.append(("prepare_data", recipe))
    if recipe == "explode":
        helper(recipe)

@hookimpl
def get_optimizers_schedulers(run, model):
    return None if model == "recipe" else (["opt"], ["sched"])

def on_begin_train(run):
    CALLS.append("not a hookimpl: plugin modules need @hookimpl")
"""


@pytest.fixture
def hooks_plugin(write_plugin: Callable[[str, str], str]) -> tuple[PluginManager, Any]:
    path = write_plugin("hooks", HOOKS)
    manager = PluginManager(local_plugins=[path], use_entry_points=False).load()
    return manager, sys.modules["runner_local_hooks"]


def test_call_passes_arguments_by_name(hooks_plugin: tuple[PluginManager, Any]) -> None:
    manager, module = hooks_plugin
    assert manager.call("prepare_data", recipe="r") == []  # None results are dropped
    assert module.CALLS == [("prepare_data", "r")]


def test_module_functions_without_hookimpl_are_not_hooks(hooks_plugin: tuple[PluginManager, Any]) -> None:
    manager, module = hooks_plugin
    manager.call("on_begin_train", run=None)
    assert module.CALLS == []
    assert not manager.has_impls("on_begin_train") and manager.has_impls("prepare_data")


def test_firstresult_hooks_return_the_first_non_none(hooks_plugin: tuple[PluginManager, Any]) -> None:
    manager, _ = hooks_plugin
    kwargs = {"run": None, "estimated_global_steps_per_epoch": 1, "epochs": 1}
    assert manager.call("get_optimizers_schedulers", model="mine", **kwargs) == (["opt"], ["sched"])
    assert manager.call("get_optimizers_schedulers", model="recipe", **kwargs) is None


def test_an_exception_in_a_hook_names_the_plugin(hooks_plugin: tuple[PluginManager, Any]) -> None:
    manager, _ = hooks_plugin
    with pytest.raises(PluginError) as caught:
        manager.call("prepare_data", recipe="explode")
    assert str(caught.value) == f"plugin {manager.info('hooks')}: hook prepare_data raised KeyError: 'explode'"
    assert isinstance(caught.value.__cause__, KeyError)


# -- callback objects ------------------------------------------------------------------


class Recorder:
    """A plain object (no @hookimpl): methods named like callback hooks receive them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_begin_train(self, run: Any) -> None:
        self.calls.append(("on_begin_train", run))

    def on_end_train_step(self, run: Any, global_step: int) -> None:
        self.calls.append(("on_end_train_step", global_step))

    def setup(self, run: Any, stage: Any) -> None:
        self.calls.append(("setup", stage))

    def register_models(self, register: Any) -> None:
        raise AssertionError("callback objects only receive run callbacks")

    def on_something_else(self, run: Any) -> None:
        raise AssertionError("not a hook")


def test_callback_objects_receive_hooks_without_markers() -> None:
    manager = PluginManager(use_entry_points=False).load()
    recorder = Recorder()
    info = PluginInfo("callback:recorder#0", "runner-extra", "1.0")
    manager.add_callback_object(recorder, info)
    manager.call("on_begin_train", run="RUN")
    manager.call("on_end_train_step", run="RUN", global_step=7, outputs=None)
    manager.call("setup", run="RUN", stage="train")
    assert recorder.calls == [("on_begin_train", "RUN"), ("on_end_train_step", 7), ("setup", "train")]
    assert manager.registry.names("model") == []
    assert manager.check_pending() == []

    manager.remove_callback_object(recorder)
    manager.call("on_begin_train", run="RUN")
    assert len(recorder.calls) == 3
    assert info not in manager.plugins()


def test_a_raising_callback_object_is_named(toy_manager: PluginManager) -> None:
    class Exploding:
        def on_begin_train(self, run: Any) -> None:
            raise ValueError("bad threshold")

    toy_manager.add_callback_object(Exploding(), PluginInfo("callback:exploding#0", "runner-extra", "1.0"))
    with pytest.raises(PluginError, match=r"^plugin runner-extra 1\.0: hook on_begin_train raised ValueError"):
        toy_manager.call("on_begin_train", run=None)


def test_a_callback_object_with_a_wrong_signature_is_a_plugin_error() -> None:
    class Typo:
        def on_end_train_step(self, run: Any, step: int) -> None: ...

    manager = PluginManager(use_entry_points=False).load()
    with pytest.raises(PluginError) as caught:
        manager.add_callback_object(Typo(), PluginInfo("callback:typo#0", "runner-extra", "1.0"))
    message = str(caught.value)
    assert message.startswith("callback:typo#0 (plugin runner-extra 1.0): PluginValidationError: ")
    assert "{'step'}" in message
    # nothing half-registered is left behind
    manager.call("on_end_train_step", run=None, global_step=1, outputs=None)
    assert [p.name for p in manager.plugins()] == ["runner"]
