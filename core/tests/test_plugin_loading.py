"""Misbehaving installed plugins, seen through the ``runner`` command (and the manager).

Each plugin is a fake installed distribution (a dist-info with a ``runner`` entry point,
found by the same discovery as a pip-installed one) put on the subprocess's PYTHONPATH
and allowed by ``RUNNER_PLUGINS``. What a user must see:

- a plugin that calls ``sys.exit()`` or raises KeyboardInterrupt at import is a load
  failure like any other; a real Ctrl-C while plugins load still stops the command (130);
- misspelt hook names, name clashes, contract ranges excluding this core and slow
  loading are one ``warning:`` line each, on every command, and break nothing;
- a name two plugins register refuses only the recipe (or command) that uses it;
- ``RUNNER_DISABLE_PLUGINS`` and ``-p no:NAME`` work on every command;
- wrong registrations and wrong hook results are one-line errors naming the plugin.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from core_helpers import HERMETIC_ENV, TOY, FakeDist, runner_command

import runner
from runner._contract.errors import PluginError
from runner._contract.registration import PluginInfo
from runner._plugins import manager as manager_module
from runner._plugins.hooks import RunHooks
from runner._plugins.manager import PluginManager, callback_warnings
from runner._plugins.versions import contract_problem, in_range

Cli = Callable[..., subprocess.CompletedProcess[str]]
Dists = Callable[..., FakeDist]

GOOD = """
from runner import hookimpl

@hookimpl
def register_models(register):
    register("good_model", lambda: None, doc="A model from a healthy plugin.")
"""

EXIT = "import sys\nsys.exit(0)\n"

MISSPELT = """
from runner import hookimpl

@hookimpl
def on_end_trian(run, global_step):
    pass
"""

DUPLICATE_LIN = """
from runner import hookimpl

@hookimpl
def register_models(register):
    register("lin", lambda: None)
"""


@pytest.fixture
def installed(fake_dists: Dists) -> Callable[..., dict[str, str]]:
    """``installed(("runner-x", source), ...)``: environment in which exactly these fake
    distributions are installed (plus the built-ins and ``-p`` plugins)."""

    def make(*dists: tuple[str, str]) -> dict[str, str]:
        made = [fake_dists(name, source) for name, source in dists]
        pythonpath = os.pathsep.join(filter(None, [str(made[0].site), os.environ.get("PYTHONPATH")]))
        return {"PYTHONPATH": pythonpath, "RUNNER_PLUGINS": ",".join(name for name, _ in dists)}

    return make


def warnings_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


# -- sys.exit() and KeyboardInterrupt at import ----------------------------------------------

EXIT_FAILURE = "plugin runner-exits 1.0 failed to load: SystemExit: it called sys.exit(0) while loading"


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    ("args", "code", "stdout"),
    [
        (["--help"], 0, "Commands:"),
        (["plugins"], 0, "runner-good 1.0 (runner-good)"),
        (["recipe", "check", "toy.toml"], 0, "toy.toml: ok"),
        (["run", "toy.toml", "-o", "model.name=nope"], 2, ""),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_plugin_calling_sys_exit_at_import_does_not_end_the_command(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]], args: list[str], code: int, stdout: str
) -> None:
    env = installed(("runner-exits", EXIT), ("runner-good", GOOD))
    result = cli(*args, cwd=toy_dir, env=env)
    assert result.returncode == code, result
    assert stdout in result.stdout, result
    if args == ["plugins"]:
        assert result.stderr.splitlines() == [EXIT_FAILURE], result
    if code == 2:  # the recipe error says why (the failed plugin is noted)
        assert "unknown model 'nope'" in result.stderr and EXIT_FAILURE in result.stderr, result


@pytest.mark.slow  # starts processes
def test_doctor_reports_a_plugin_calling_sys_exit(cli: Cli, installed: Callable[..., dict[str, str]]) -> None:
    result = cli("plugins", "doctor", env=installed(("runner-exits", EXIT), ("runner-good", GOOD)))
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [f"error: {EXIT_FAILURE}", "error: plugins doctor: 1 problem"], result
    assert "runner-good 1.0" in result.stdout.splitlines()[0]


@pytest.fixture(params=["default", "ignored", "left to the OS"])
def sigint_handler(request: pytest.FixtureRequest) -> Iterator[None]:
    """SIGINT as Python sets it up, ignored (a process started in the background, under
    nohup, by some CI runners: no Ctrl-C can reach it) or left to the OS; put back after."""
    handler = {"default": signal.default_int_handler, "ignored": signal.SIG_IGN, "left to the OS": signal.SIG_DFL}
    previous = signal.signal(signal.SIGINT, handler[request.param])
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_handler")
def test_keyboard_interrupt_raised_by_import_code_is_a_load_failure(
    fake_dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists("runner-interrupts", "raise KeyboardInterrupt\n")
    fake_dists("runner-good", GOOD)
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-interrupts,runner-good")
    manager = PluginManager().load()
    assert [str(f) for f in manager.failures] == [
        "plugin runner-interrupts 1.0 failed to load: KeyboardInterrupt: it raised KeyboardInterrupt while "
        "loading (no Ctrl-C was pressed)"
    ]
    assert manager.registry.names("model") == ["good_model"]


CTRL_C = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"


@pytest.fixture
def terminal_sigint() -> Iterator[None]:
    """SIGINT as in a terminal (Python's handler), whatever pytest was started with; put back after."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("terminal_sigint")
def test_a_real_ctrl_c_while_plugins_load_stops_loading(fake_dists: Dists, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dists("runner-slow-import", CTRL_C)
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-slow-import")
    with pytest.raises(KeyboardInterrupt):
        PluginManager().load()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.slow  # starts processes
def test_a_real_ctrl_c_while_plugins_load_exits_130(installed: Callable[..., dict[str, str]], tmp_path: Path) -> None:
    # Started as from a terminal: a process started with SIGINT ignored (pytest in the
    # background, under nohup) passes that on, and no Ctrl-C would reach runner at all.
    from_terminal = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    )
    result = subprocess.run(
        [sys.executable, "-c", from_terminal, *runner_command(), "plugins"],
        cwd=tmp_path,
        env={**os.environ, **HERMETIC_ENV, **installed(("runner-slow-import", CTRL_C))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # click turns the KeyboardInterrupt into Abort: runner's one line for it, exit 130
    assert result.returncode == 130 and result.stderr.split() in (["aborted"], ["interrupted"]), result


# -- warnings on every command ---------------------------------------------------------------

MISSPELT_LINE = "warning: plugin runner-misspelt 1.0: on_end_trian is not a runner hook (did you mean 'on_end_train'?)"


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    "args",
    [["--help"], ["plugins"], ["plugins", "--json"], ["recipe", "check", "toy.toml"], ["explain", "toy.toml"]],
    ids=" ".join,
)
def test_a_misspelt_hookimpl_is_one_warning_line_on_every_command(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]], args: list[str]
) -> None:
    result = cli(*args, cwd=toy_dir, env=installed(("runner-misspelt", MISSPELT)))
    assert result.returncode == 0, result
    assert warnings_of(result) == [MISSPELT_LINE], result


@pytest.mark.slow  # starts processes
def test_doctor_reports_the_warnings_as_problems_without_repeating_them(
    cli: Cli, installed: Callable[..., dict[str, str]]
) -> None:
    result = cli("plugins", "doctor", env=installed(("runner-misspelt", MISSPELT)))
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [
        "error: " + MISSPELT_LINE.removeprefix("warning: "),
        "error: plugins doctor: 1 problem",
    ], result


def test_a_misspelt_callback_method_is_reported_when_the_run_registers_it() -> None:
    class Typo:
        def on_end_trian(self, run: Any, global_step: int) -> None: ...

        def on_log(self, run: Any, record: Any) -> None: ...

        def _on_private(self) -> None: ...

    manager = PluginManager(use_entry_points=False).load()
    seen: list[str] = []
    manager.warn = seen.append
    info = PluginInfo("callback:loss_guard#0", "runner-x", "1.0")
    manager.add_callback_object(Typo(), info)
    expected = (
        "plugin runner-x 1.0: callback 'loss_guard' method on_end_trian is not a runner hook "
        "(did you mean 'on_end_train'?); it is never called"
    )
    assert seen == [expected] == callback_warnings(Typo(), info)
    manager.call("on_end_train", run=None, global_step=1)  # nothing else breaks


def test_loading_plugins_slowly_is_a_warning_naming_the_slowest(
    fake_dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dists("runner-sleepy", "import time\ntime.sleep(0.2)\n")
    fake_dists("runner-good", GOOD)
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-sleepy,runner-good")
    monkeypatch.setattr(manager_module, "SLOW_LOAD_S", 0.15)
    [line] = PluginManager().warnings()
    assert line.startswith("loading plugins took 0.2 s, 0.2 s of it importing runner-sleepy 1.0; ")
    assert line.endswith("disable it with -p no:runner-sleepy (or RUNNER_DISABLE_PLUGINS=runner-sleepy)")
    monkeypatch.setattr(manager_module, "SLOW_LOAD_S", 1.0)
    assert PluginManager().warnings() == []


# -- name clashes -----------------------------------------------------------------------------

CLASH = (
    "model 'lin' is registered by 2 plugins, runner-duplicate 1.0 and toy_plugin.py local: uninstall one, "
    "or disable it: -p no:runner-duplicate (or RUNNER_DISABLE_PLUGINS=runner-duplicate)"
)


@pytest.mark.slow  # starts processes
def test_a_clash_is_listed_by_help_and_plugins_and_refused_only_where_used(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]]
) -> None:
    env = installed(("runner-duplicate", DUPLICATE_LIN))  # toy_plugin.py registers 'lin' too
    for args in (["-p", "toy_plugin.py", "--help"], ["-p", "toy_plugin.py", "plugins"]):
        result = cli(*args, cwd=toy_dir, env=env)
        assert result.returncode == 0, result
        assert warnings_of(result) == [f"warning: {CLASH}"], result

    used = cli("recipe", "check", "toy.toml", cwd=toy_dir, env=env)  # its plugins = ["toy_plugin.py"]
    clash = CLASH.replace("toy_plugin.py", str(toy_dir / "toy_plugin.py"))
    assert used.returncode == 2, used
    assert used.stderr.splitlines() == [
        f"warning: {clash}",
        f"error: toy.toml:18:1: model.name: {clash}",
        "error: recipe invalid: 1 problem",
    ], used

    fixed = cli("-p", "no:runner-duplicate", "recipe", "check", "toy.toml", cwd=toy_dir, env=env)
    assert fixed.returncode == 0 and fixed.stderr == "", fixed


@pytest.mark.slow  # starts processes
def test_a_recipe_not_using_the_clashing_name_is_fine(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]]
) -> None:
    env = installed(("runner-duplicate", DUPLICATE_LIN.replace('"lin"', '"toy"').replace("models", "datasets")))
    (toy_dir / "other.toml").write_text(
        TOY.replace('name = "toy", n = 64', 'name = "toy_rows", n = 64').replace(
            'name = "toy", split = "val"', 'name = "toy_rows", split = "val"'
        ),
        encoding="utf-8",
    )
    result = cli("recipe", "check", "other.toml", cwd=toy_dir, env=env)
    assert result.returncode == 0, result
    assert len(warnings_of(result)) == 1 and "dataset 'toy' is registered by 2 plugins" in result.stderr, result


@pytest.mark.slow  # starts processes
def test_a_command_clash_refuses_only_that_command(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]]
) -> None:
    env = installed(
        (
            "runner-shadow",
            "from runner import hookimpl\n\n@hookimpl\ndef register_commands(register):\n"
            "    register('runs', 'x:y', help='mine')\n",
        )
    )
    clash = (
        "command 'runs' is registered by 2 plugins, runner-core 0.1.0 and runner-shadow 1.0: uninstall one, "
        "or disable it: -p no:runner-shadow (or RUNNER_DISABLE_PLUGINS=runner-shadow)"
    )
    help_ = cli("--help", env=env)
    assert help_.returncode == 0 and warnings_of(help_) == [f"warning: {clash}"], help_
    assert ["runs", "(unusable: two plugins register it, see above)"] in [
        line.split(None, 1) for line in help_.stdout.splitlines()
    ], help_
    refused = cli("runs", env=env)
    assert refused.returncode == 2 and refused.stderr.splitlines()[-1] == f"error: {clash}", refused
    assert cli("recipe", "check", "toy.toml", cwd=toy_dir, env=env).returncode == 0
    doctor = cli("plugins", "doctor", env=env)
    assert doctor.returncode == 2 and f"error: {clash}" in doctor.stderr.splitlines(), doctor


# -- disabling a plugin -------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    "args",
    [["--help"], ["plugins"], ["plugins", "doctor"], ["recipe", "check", "toy.toml"], ["explain", "toy.toml"]],
    ids=" ".join,
)
@pytest.mark.parametrize("how", ["env", "-p no:"])
def test_a_disabled_plugin_is_not_even_imported(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]], args: list[str], how: str
) -> None:
    env = installed(("runner-exits", EXIT), ("runner-misspelt", MISSPELT))
    if how == "env":
        result = cli(*args, cwd=toy_dir, env={**env, "RUNNER_DISABLE_PLUGINS": "runner-exits,runner-misspelt"})
    else:
        result = cli("-p", "no:runner-exits", "-p", "no:runner-misspelt", *args, cwd=toy_dir, env=env)
    assert result.returncode == 0, result
    assert result.stderr == "", result


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    "spec", [["-p", "no:runner-misspelt"], ["--plugin=no:runner-misspelt"], ["-pno:runner-misspelt"]]
)
def test_a_command_level_no_disables_before_anything_loads(
    cli: Cli, toy_dir: Path, installed: Callable[..., dict[str, str]], spec: list[str]
) -> None:
    env = installed(("runner-misspelt", MISSPELT))
    result = cli("recipe", "check", "toy.toml", *spec, cwd=toy_dir, env=env)
    assert result.returncode == 0 and result.stderr == "", result


# -- wrong registrations and hook results ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "return ['mlp']",
            "hook register_models returned list ['mlp']; registration hooks call register(...) for each "
            "component and return None",
        ),
        (
            "register('m', 3)",
            "hook register_models: model 'm': the factory must be callable or a 'module:attribute' string, got int 3",
        ),
        ("register(3, 'x:y')", "hook register_models: model names must be non-empty strings, got 3"),
    ],
)
def test_a_wrong_registration_is_a_load_failure_naming_the_plugin(
    fake_dists: Dists, monkeypatch: pytest.MonkeyPatch, body: str, error: str
) -> None:
    fake_dists("runner-odd", f"from runner import hookimpl\n\n@hookimpl\ndef register_models(register):\n    {body}\n")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-odd")
    manager = PluginManager()
    assert [str(f) for f in manager.failures] == [f"plugin runner-odd 1.0 failed to load: {error}"]
    assert manager.registry.names("model") == []


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    ("call", "error"),
    [
        ("register(3, 'x:y')", "command names must be non-empty strings, got int 3"),
        ("register('c', 3)", "command 'c' must be a click command or a 'module:attribute' string, got int 3"),
        ("register('c', 'x:y', help=None)", "command 'c': help must be a string, got NoneType None"),
    ],
)
def test_a_wrong_command_registration_is_a_load_failure(
    cli: Cli, installed: Callable[..., dict[str, str]], call: str, error: str
) -> None:
    env = installed(
        ("runner-odd", f"from runner import hookimpl\n\n@hookimpl\ndef register_commands(register):\n    {call}\n")
    )
    result = cli("plugins", env=env)
    assert result.returncode == 0, result
    assert result.stderr.splitlines() == [f"plugin runner-odd 1.0 failed to load: hook register_commands: {error}"]


BAD_RESULTS = """
from runner import hookimpl

@hookimpl
def get_state(run):
    return [1, 2]

@hookimpl
def get_optimizers_schedulers(run, model, estimated_global_steps_per_epoch, epochs):
    return "adam"
"""


def test_a_hook_returning_the_wrong_shape_is_a_plugin_error_naming_it(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin("bad_results", BAD_RESULTS)
    hooks = RunHooks(PluginManager(local_plugins=[path], use_entry_points=False).load())  # as the engine calls them
    with pytest.raises(PluginError) as caught:
        hooks.get_state(run=None)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"plugin {path} local: hook get_state returned list [1, 2]; get_state returns a dict with string keys, or None"
    )
    with pytest.raises(
        PluginError, match=r"^plugin .*bad_results\.py local: hook get_optimizers_schedulers returned str 'adam'; "
    ):
        hooks.get_optimizers_schedulers(run=None, model=None, steps_per_epoch=1, epochs=1)  # type: ignore[arg-type]


def test_a_callback_object_returning_the_wrong_state_is_named() -> None:
    class Stateful:
        def get_state(self, run: Any) -> Any:
            return {1: "not a string key"}

    manager = PluginManager(use_entry_points=False).load()
    manager.add_callback_object(Stateful(), PluginInfo("callback:stateful#0", "runner-x", "1.0"))
    with pytest.raises(
        PluginError,
        match=r"^callback:stateful#0 \(plugin runner-x 1\.0\): hook get_state returned dict \{1: 'not a string key'\}",
    ):
        RunHooks(manager).get_state(run=None)  # type: ignore[arg-type]


def test_blame_names_the_implementation_that_raises(write_plugin: Callable[[str, str], str]) -> None:
    path = write_plugin(
        "raises_state", "from runner import hookimpl\n\n@hookimpl\ndef get_state(run):\n    raise KeyError('k')\n"
    )
    manager = PluginManager(local_plugins=[path], use_entry_points=False).load()
    with pytest.raises(PluginError, match=r"^plugin .*raises_state\.py local: hook get_state raised KeyError: 'k'$"):
        RunHooks(manager).get_state(run=None)  # type: ignore[arg-type]


# -- the contract version -----------------------------------------------------------------------


def test_the_contract_version_is_public() -> None:
    assert runner.CONTRACT_VERSION == "1.0" and "CONTRACT_VERSION" in runner.__all__


@pytest.mark.parametrize(
    ("declared", "version", "holds"),
    [
        (">=1.0,<2", "1.0", True),
        (">=1.0,<2", "1.7", True),
        (">=1.0,<2", "2.0", False),
        (">=1.1", "1.0", False),
        ("==1.*", "1.3", True),
        ("==1.*", "2.0", False),
        ("!=1.2", "1.2", False),
        ("~=1.2", "1.9", True),
        ("~=1.2", "2.0", False),
        (" > 0.9 , <= 1 ", "1.0", True),
    ],
)
def test_contract_ranges(declared: str, version: str, holds: bool) -> None:
    assert in_range(declared, version) is holds


@pytest.mark.parametrize("declared", ["", ">>1", "1.0", ">=1.*", "~=1", ">=one"])
def test_malformed_contract_ranges(declared: str) -> None:
    with pytest.raises(ValueError):
        in_range(declared, "1.0")


def test_contract_problems() -> None:
    info = PluginInfo("x", "runner-x", "2.0")
    assert contract_problem(info, ">=1.0,<2", "1.0") is None
    assert contract_problem(info, ">=2", "1.0") == (
        f"plugin runner-x 2.0: written for runner contract >=2 but runner-core {runner.__version__} has contract "
        "1.0; install a runner-x release made for contract 1.0, or a runner-core in its range"
    )
    assert contract_problem(info, 2, "1.0") == (
        "plugin runner-x 2.0: RUNNER_CONTRACT must be a version range string such as '>=1.0,<2', got 2"
    )
    assert contract_problem(info, ">>1", "1.0") == (
        "plugin runner-x 2.0: RUNNER_CONTRACT '>>1' is not a version range such as '>=1.0,<2': "
        "'>>1' is not OP VERSION (OP one of == != >= <= > < ~=)"
    )


@pytest.mark.slow  # starts processes
def test_a_plugin_made_for_another_contract_is_a_warning_and_a_doctor_problem(
    cli: Cli, installed: Callable[..., dict[str, str]]
) -> None:
    env = installed(
        ("runner-future", GOOD + 'RUNNER_CONTRACT = ">=2.0,<3"\n'), ("runner-now", 'RUNNER_CONTRACT = ">=1.0,<2"\n')
    )
    line = (
        f"plugin runner-future 1.0: written for runner contract >=2.0,<3 but runner-core {runner.__version__} has "
        "contract 1.0; install a runner-future release made for contract 1.0, or a runner-core in its range"
    )
    listing = cli("plugins", env=env)
    assert listing.returncode == 0 and warnings_of(listing) == [f"warning: {line}"], listing
    assert "runner-future 1.0 (runner-future)\n  models: good_model" in listing.stdout  # still loaded
    doctor = cli("plugins", "doctor", env=env)
    assert doctor.returncode == 2 and doctor.stderr.splitlines() == [
        f"error: {line}",
        "error: plugins doctor: 1 problem",
    ]


# -- doctor: import probes ------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_doctor_flags_heavy_imports_of_each_plugin_and_reports_import_times(
    cli: Cli, installed: Callable[..., dict[str, str]]
) -> None:
    """Each plugin is probed in a fresh interpreter: the second numpy importer is flagged too."""
    env = installed(
        ("runner-heavy-a", "import numpy\n"), ("runner-heavy-b", "import numpy.linalg\n"), ("runner-good", GOOD)
    )
    result = cli("plugins", "doctor", env=env)
    assert result.returncode == 2, result
    problems = result.stderr.splitlines()
    assert problems[-1] == "error: plugins doctor: 2 problems", result
    for dist in ("runner-heavy-a", "runner-heavy-b"):
        line = next(p for p in problems if dist in p)
        assert line.startswith(f"error: plugin {dist} 1.0: importing its entry module '{dist.replace('-', '_')}_"), line
        assert " imports numpy (" in line and "which slows every runner command" in line, line
    times = result.stdout.splitlines()[1]
    assert times.startswith("import time: ") and all(f"{d} 1.0 " in times for d in ("runner-heavy-a", "runner-good"))


@pytest.mark.slow  # starts processes
def test_doctor_flags_a_slow_import(fake_dists: Dists, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner._cli.tools import doctor, probe

    fake_dists("runner-sleepy", "import time\ntime.sleep(0.3)\n")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-sleepy")
    monkeypatch.setattr(doctor, "SLOW_IMPORT_S", 0.25)
    report = doctor.diagnose(PluginManager())
    [problem] = report.problems
    assert problem.startswith("plugin runner-sleepy 1.0: importing its entry module 'runner_sleepy_")
    assert problem.endswith(
        " s, and every runner command (runner --help too) waits for it; "
        "do slow work in build() methods or hooks, not at import"
    )
    assert report.import_seconds[report.checked[-1]] >= 0.3
    assert probe.SLOW_IMPORT_S == 1.0  # the real threshold


@pytest.mark.slow  # starts processes
def test_the_doctor_probe_survives_an_entry_module_that_prints_and_exits(
    fake_dists: Dists, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner._cli.tools.probe import probe_imports

    fake_dists("runner-noisy", "print('hello', end='')\nimport sys\nsys.exit(3)\n")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-noisy")
    [found] = probe_imports([pair for pair in PluginManager.discover() if pair[1].dist == "runner-noisy"])
    assert found.error == "SystemExit" and found.heavy == ()
    assert sys.modules.get(found.entry_point) is None


def test_new_plugins_declare_the_running_contract() -> None:
    from runner._cli.tools.scaffold import PluginNames, render_plugin

    files = render_plugin(PluginNames.from_name("acme"))
    [entry_module] = [text for path, text in files.items() if path.endswith("/plugin.py") and "src/" in path]
    declared = re.search(r'^RUNNER_CONTRACT = "([^"]+)"$', entry_module, re.M)
    assert declared is not None and declared[1] == ">=1.0,<2" and in_range(declared[1])
