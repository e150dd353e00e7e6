"""The command line never imports torch unless it trains.

``runner --help``, ``runner plugins`` and ``runner recipe check|show`` answer in a fraction
of a second because nothing on their path (core, CLI, recipe validation, a plugin's
registration) imports torch. Each command runs in a fresh interpreter that reports the
torch modules it ended up with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from core_helpers import HERMETIC_ENV, TOY

PROBE = """
import sys
import runner._cli.main

code = 0
try:
    runner._cli.main.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
torch = sorted(name for name in sys.modules if name == "torch" or name.startswith("torch."))
print("torch modules:", len(torch), file=sys.stderr)
sys.exit(code)
"""


def run_without_torch(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        env={**os.environ, **HERMETIC_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["--version"], 0),
        (["plugins"], 0),
        (["plugins", "--json"], 0),
        (["-p", "toy_plugin.py", "plugins"], 0),
        (["recipe", "check", "toy.toml"], 0),
        (["recipe", "show", "toy.toml", "-o", "run.epochs=1"], 0),
        (["recipe", "check", "bad.toml"], 2),
        (["run", "--help"], 0),
        (["run", "bad.toml"], 2),
        (["run", "toy.toml", "--run-dir", "done"], 2),
        (["run", "toy.toml", "--run-dir", "."], 2),
        (["recipe", "schema", "-o", "schema.json"], 0),
        (["explain", "toy.toml", "-o", "run.epochs=1"], 0),
        (["explain", "bad.toml"], 2),
        (["plugins", "doctor"], 0),
        (["new-plugin", "scaffolded"], 0),
        (["predict", "--help"], 0),
        (["export", "--help"], 0),
        (["predict", "done", "--split", "test"], 2),
        (["export", "nowhere", "--format", "onnx"], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_commands_that_do_not_train_never_import_torch(toy_dir: Path, args: list[str], code: int) -> None:
    (toy_dir / "bad.toml").write_text(TOY.replace('"lin"', '"lni"'), encoding="utf-8")
    (toy_dir / "done").mkdir()
    (toy_dir / "done" / "metrics.jsonl").touch()
    result = run_without_torch(args, toy_dir)
    assert result.returncode == code, result.stderr
    assert result.stderr.splitlines()[-1] == "torch modules: 0", result.stderr


@pytest.mark.slow
def test_the_probe_does_see_torch_when_a_command_trains(toy_dir: Path) -> None:
    result = run_without_torch(["run", "toy.toml", "--no-progress", "-o", "run.max_steps=1"], toy_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] != "torch modules: 0"


@pytest.mark.slow  # starts processes
def test_importing_runner_and_its_registration_modules_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys, runner, runner._plugins.manager, runner._recipe.validate, runner._recipe.render\n"
        "import runner._schema.check\n"
        "from runner._plugins.manager import PluginManager\n"
        "PluginManager(use_entry_points=False).registry\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=120)


@pytest.mark.slow  # starts processes
def test_help_imports_no_parameter_class_nor_unused_exports(tmp_path: Path) -> None:
    """Plugins' entry modules import ``runner`` (for ``hookimpl``) on every command, so
    ``runner --help`` builds no attrs class: ``runner``'s other exports, the installed
    plugins' declarations (and the core's) and shell completion are imported on first use."""
    probe = PROBE.replace("torch = sorted(", 'print("loaded:", *sorted(sys.modules), file=sys.stderr)\ntorch = sorted(')
    result = subprocess.run(
        [sys.executable, "-c", probe, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = next(line for line in result.stderr.splitlines() if line.startswith("loaded:")).split()[1:]
    unwanted = {
        "runner._contract.task",
        "runner._contract.stage",
        "runner._schema.fields",
        "click.shell_completion",
        "runner._contract.declaration",
        "runner._builtin.components",
    }
    declarations = (".params", ".components")
    assert [
        m
        for m in loaded
        if m in unwanted or (m.startswith("runner_") and (m.endswith(declarations) or ".components." in m))
    ] == []


def test_lazy_exports_of_the_runner_package() -> None:
    import runner
    from runner._contract.params import param
    from runner._contract.task import Task

    assert runner.Task is Task and runner.param is param and {"Task", "param", "Stage"} <= set(dir(runner))
    for name in runner.__all__:
        assert getattr(runner, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        runner.nope  # noqa: B018


@pytest.mark.slow  # starts processes
def test_the_python_api_imports_torch_only_when_called() -> None:
    """``import runner`` and looking up ``runner.fit``/``runner.load`` stay torch-free (a
    notebook's first cell is fast); calling them imports the engine. Looking up ``runner.import_torchvision``
    is torch-free too (plugin modules import it at their top)."""
    code = (
        "import sys, runner\n"
        "runner.fit, runner.load, runner.FitResult, runner.LoadedRun, runner.batch_inputs\n"
        "runner.import_torchvision\n"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], env={**os.environ, **HERMETIC_ENV}, timeout=120).returncode == 0
