"""runner.testing's kit for plugin tests: throwaway plugin distributions, the ``runner``
command in-process and in a subprocess, and the torch-free entry module check."""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from runner._plugins.manager import PluginManager
from runner.testing import (
    CliResult,
    RunnerTester,
    assert_entry_module_torch_free,
    make_plugin_dist,
    run_cli,
    run_cli_subprocess,
)

PLUGIN = """
from runner import RegisterComponent, hookimpl


@hookimpl
def register_models(register: RegisterComponent) -> None:
    register("kit_model", "runner_kit.models:Model")
"""

MODELS = '''
import runner


@runner.component
class Model:
    """A model for the kit's tests."""

    width: int = runner.param(3, doc="Width.")

    def build(self) -> object:
        import torch

        return torch.nn.Linear(self.width, 1)
'''

FILES = {"runner_kit/__init__.py": "", "runner_kit/plugin.py": PLUGIN, "runner_kit/models.py": MODELS}


# -- plugin distributions ----------------------------------------------------------------


def test_a_plugin_dist_is_installed_for_the_test_and_gone_after(tmp_path: Path) -> None:
    tester = RunnerTester(tmp_path)
    dist = tester.plugin_dist("runner-kit", FILES, version="1.5")
    assert dist.entry_points == {"kit": "runner_kit.plugin"} and dist.modules == ("runner_kit",)
    assert importlib.metadata.version("runner-kit") == "1.5"
    manager = PluginManager(local_plugins=[], use_entry_points=True).load()
    component = manager.registry.get("model", "kit_model")
    assert (component.plugin.name, component.plugin.dist, component.plugin.version) == ("kit", "runner-kit", "1.5")
    assert "runner_kit.plugin" in sys.modules
    tester.close()
    assert "runner_kit.plugin" not in sys.modules and str(dist.site) not in sys.path
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("runner-kit")


def test_several_dists_share_a_site_and_name_their_entry_points(tmp_path: Path) -> None:
    site = tmp_path / "site"
    first = make_plugin_dist(site, "runner-one", {"one.py": "X = 1\n"}, requires=["runner-core>=9"])
    second = make_plugin_dist(site, "runner-two", {"two/__init__.py": ""}, entry_points={"deux": "two:hooks"})
    assert first.entry_points == {"one": "one"} and second.entry_points == {"deux": "two:hooks"}
    assert (site / "one.py").read_text() == "X = 1\n"
    metadata = (site / "runner_one-0.1.0.dist-info" / "METADATA").read_text()
    assert "Name: runner-one\n" in metadata and "Requires-Dist: runner-core>=9\n" in metadata
    assert (site / "runner_two-0.1.0.dist-info" / "entry_points.txt").read_text() == "[runner]\ndeux = two:hooks\n"
    with pytest.raises(ValueError, match="say which is the entry point"):
        make_plugin_dist(site, "runner-three", {"a.py": "", "b.py": ""})


def test_files_are_dedented(tmp_path: Path) -> None:
    make_plugin_dist(tmp_path, "runner-dent", {"dent.py": "\n    def f():\n        return 1\n"})
    assert (tmp_path / "dent.py").read_text() == "def f():\n    return 1\n"


@pytest.mark.slow  # builds with pip
def test_a_plugin_dist_built_with_pip_is_a_real_installation(tmp_path: Path) -> None:
    dist = make_plugin_dist(tmp_path / "site", "runner-kit", FILES, pip=True, version="2.0")
    infos = sorted(p.name for p in dist.site.glob("*.dist-info"))
    assert infos == ["runner_kit-2.0.dist-info"]
    assert "kit = runner_kit.plugin" in (dist.site / infos[0] / "entry_points.txt").read_text().replace('"', "")
    result = run_cli_subprocess("plugins", env=dist.env(), plugins=["runner-kit"])
    assert result.exit_code == 0, result
    assert "kit_model" in result.stdout and "runner-kit 2.0" in result.stdout


# -- the command line --------------------------------------------------------------------


def test_run_cli_in_process_returns_code_and_both_streams(tmp_path: Path) -> None:
    result = run_cli("recipe", "check", "missing.toml", cwd=tmp_path, plugins=())
    assert isinstance(result, CliResult) and result.exit_code == result.returncode == 2
    assert result.stdout == "" and result.error_lines and "missing.toml" in result.error_lines[0]
    code, out, err = result
    assert (code, out, err) == (2, "", result.stderr)
    assert "exit code 2" in str(result) and "missing.toml" in str(result)
    helped = run_cli("--help", plugins=())
    assert helped.exit_code == 0 and "Commands" in helped.stdout and helped.stderr == ""


def test_run_cli_sees_a_plugin_dist_and_the_allow_list(runner_tester: RunnerTester) -> None:
    runner_tester.plugin_dist("runner-kit", FILES)
    listed = runner_tester.cli("plugins", plugins=["runner-kit"])
    assert listed.exit_code == 0, listed
    assert "kit_model" in listed.stdout
    hidden = runner_tester.cli("plugins", plugins=())
    assert hidden.exit_code == 0 and "kit_model" not in hidden.stdout


def test_run_cli_sets_and_removes_environment_variables(runner_tester: RunnerTester, tmp_path: Path) -> None:
    runner_tester.plugin_dist("runner-kit", FILES)
    disabled = runner_tester.cli("plugins", env={"RUNNER_DISABLE_PLUGINS": "runner-kit", "RUNNER_PLUGINS": None})
    assert disabled.exit_code == 0 and "kit_model" not in disabled.stdout


@pytest.mark.slow  # a subprocess
def test_run_cli_subprocess_sees_the_testers_dists(runner_tester: RunnerTester) -> None:
    runner_tester.plugin_dist("runner-kit", FILES)
    result = runner_tester.cli_subprocess("plugins", plugins=["runner-kit"])
    assert result.exit_code == 0, result
    assert "kit_model" in result.stdout
    failed = run_cli_subprocess("recipe", "check", "missing.toml", cwd=runner_tester.tmp_path, plugins=())
    assert failed.exit_code == 2 and failed.error_lines and failed.stdout == ""


# -- torch-free entry modules ------------------------------------------------------------


@pytest.mark.slow  # fresh interpreters
def test_assert_entry_module_torch_free_names_the_import_chain(runner_tester: RunnerTester) -> None:
    runner_tester.plugin_dist(
        "runner-heavy",
        {
            "runner_heavy/__init__.py": "",
            "runner_heavy/plugin.py": "from runner_heavy import models\n",
            "runner_heavy/models.py": "import torch\n",
            "runner_heavy/lazy.py": "import fractions\n",
        },
    )
    env = runner_tester.dists_env()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", env["PYTHONPATH"])
        assert_entry_module_torch_free("runner_heavy.lazy", also=("numpy",))
        with pytest.raises(AssertionError) as caught:
            assert_entry_module_torch_free("runner_heavy.plugin")
        message = str(caught.value)
        assert message.startswith("importing runner_heavy.plugin imported torch:")
        assert "runner_heavy/plugin.py:1 -> " in message and "runner_heavy/models.py:1" in message
        with pytest.raises(AssertionError, match=r"imported fractions:\n  fractions via .*lazy.py:1"):
            assert_entry_module_torch_free("runner_heavy.lazy", also=("fractions",))
        with pytest.raises(AssertionError, match=r"imported runner_heavy.models"):
            assert_entry_module_torch_free(
                "runner_heavy.lazy", also=("runner_heavy.models",), imports=["runner_heavy.plugin"]
            )
        with pytest.raises(AssertionError, match="No module named 'runner_missing'"):
            assert_entry_module_torch_free("runner_missing")
