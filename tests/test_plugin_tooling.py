"""Tooling around installed plugins, driven through the ``runner`` CLI:

- the recipe JSON Schema (``runner recipe schema``) accepts every recipe in recipes/, and
  a mutated recipe fails it at the key path ``runner recipe check`` reports;
- ``runner plugins doctor`` passes the workspace plugins and flags the fixture plugins
  with a misspelt hookimpl and with an incompatible core version range;
- ``runner new-plugin`` writes a plugin that pip installs, ``runner plugins`` lists, and
  whose own tests pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").glob("*.toml"))


@pytest.fixture(scope="module")
def schema(run_cli: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("schema") / "recipe.schema.json"
    result = run_cli("recipe", "schema", "-o", out)
    assert result.returncode == 0, str(result)
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def schema_error_paths(schema: dict[str, Any], data: dict[str, Any]) -> set[str]:
    """Dotted key paths of the schema errors (an unexpected key at the key itself)."""
    paths = set()
    for error in jsonschema.Draft202012Validator(schema).iter_errors(data):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            paths |= {".".join([*path, key]) for key in error.instance if key not in known}
        else:
            paths.add(".".join(path))
    return paths


def test_recipes_are_found() -> None:
    assert len(RECIPES) >= 3, RECIPES


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_validates_against_the_schema(schema: dict[str, Any], recipe: Path) -> None:
    from runner._recipe.source import read_recipe

    data = read_recipe(recipe).data  # composed: a variant alone lacks what its base holds
    assert schema_error_paths(schema, data) == set()


MUTATIONS = [
    ("model.hiden", lambda d: d["model"].update(hiden=[3])),
    ("optimizer.lr", lambda d: d["optimizer"].update(lr="fast")),
    ("data.train.dataset.name", lambda d: d["data"]["train"]["dataset"].update(name="digts")),
    ("data.val.main.loader.batch_size", lambda d: d["data"]["val"]["main"]["loader"].update(batch_size=0)),
    ("run.precision", lambda d: d["run"].update(precision="fp8")),
    ("scheduler.name", lambda d: d["scheduler"].update(name="cosin")),
]


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(("path", "mutate"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutated_recipe_fails_the_schema_where_recipe_check_does(
    schema: dict[str, Any], run_cli: Any, tmp_path: Path, path: str, mutate: Any
) -> None:
    import tomli_w

    data = tomllib.loads((REPO / "recipes" / "digits.toml").read_text(encoding="utf-8"))
    mutate(data)
    recipe = tmp_path / "mutated.toml"
    recipe.write_text(tomli_w.dumps(data), encoding="utf-8")
    result = run_cli("recipe", "check", recipe)
    assert result.returncode == 2, str(result)
    reported = {m[1] for m in (re.match(r"\S+:\d+:\d+: (\S+):", line) for line in result.error_lines) if m}
    assert reported == {path}, str(result)
    assert schema_error_paths(schema, data) == {path}


@pytest.mark.slow  # starts processes
def test_schema_includes_installed_plugins_only_when_installed(installed: Any, run_cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    result = run_cli("recipe", "schema", "-o", out, env_extra=installed.env("runner-tutorial"))
    assert result.returncode == 0, str(result)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert "spirals" in data["$defs"]["dataset"]["properties"]["name"]["enum"]
    branches = data["$defs"]["dataset"]["allOf"]
    spirals = next(b["then"] for b in branches if b["if"]["properties"]["name"]["const"] == "spirals")
    assert spirals["properties"]["turns"]["default"] == 1.5 and spirals["properties"]["turns"]["minimum"] == 0.25
    assert spirals["required"] == ["split"]


READ_EVERY_DECLARATION = """
import sys
from runner._plugins.manager import PluginManager

registry = PluginManager().registry
for component in registry:
    assert component.schema is not None and component.summary, component.name
    assert component.declaration is not None, f"{component.kind} {component.name!r} is not declared once"
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


@pytest.mark.slow  # starts processes
def test_every_workspace_component_is_declared_once_in_a_torch_free_module(run_python: Any) -> None:
    """Validating, documenting and exporting every bundled component imports no torch."""
    result = run_python("-c", READ_EVERY_DECLARATION)
    assert result.returncode == 0, str(result)
    assert result.stdout.strip() == "[]", str(result)


# -- doctor ---------------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_doctor_passes_the_workspace_plugins(run_cli: Any) -> None:
    result = run_cli("plugins", "doctor")
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == "no problems found"
    assert result.stderr == "", str(result)  # no deprecated registration left in the workspace
    for dist in ("runner-core", "runner-models", "runner-datasets", "runner-checkpoint"):
        assert f"{dist} " in result.stdout.splitlines()[0], str(result)


@pytest.mark.slow  # starts processes
def test_doctor_flags_a_misspelt_hookimpl(installed: Any, run_cli: Any) -> None:
    result = run_cli("plugins", "doctor", env_extra=installed.env("runner-misspelt-hook", "runner-tutorial"))
    assert result.returncode == 2, str(result)
    assert result.error_lines == [
        "plugin runner-misspelt-hook 0.1.0: register_dataset is not a runner hook (did you mean 'register_datasets'?)",
        "plugins doctor: 1 problem",
    ], str(result)


@pytest.mark.slow  # starts processes
def test_doctor_flags_an_incompatible_core_version_range(installed: Any, run_cli: Any) -> None:
    result = run_cli("plugins", "doctor", env_extra=installed.env("runner-future-core"))
    assert result.returncode == 2, str(result)
    assert result.error_lines == [
        "plugin runner-future-core 2.0.0: needs runner-core<10,>=9.0 but runner-core 0.1.0 is installed; "
        "install a runner-future-core release made for this core, or a runner-core in that range",
        "plugins doctor: 1 problem",
    ], str(result)


@pytest.mark.slow  # starts processes
def test_doctor_reports_plugins_that_fail_to_load(installed: Any, run_cli: Any) -> None:
    env = installed.env("runner-broken-import", "runner-broken-hook")
    result = run_cli("plugins", "doctor", env_extra=env)
    assert result.returncode == 2, str(result)
    lines = result.error_lines
    assert any(line.startswith("plugin runner-broken-import 0.1.0 failed to load: ImportError") for line in lines)
    broken_hook = "plugin runner-broken-hook 0.1.0 failed to load: hook register_datasets"
    assert any(line.startswith(broken_hook) for line in lines)
    assert lines[-1] == "plugins doctor: 2 problems"


# -- scaffold -------------------------------------------------------------------------------


@pytest.mark.slow
def test_new_plugin_installs_is_listed_and_passes_its_own_tests(
    run_cli: Any, run_python: Any, pip_install: Any, tmp_path: Path
) -> None:
    result = run_cli("new-plugin", "acme-data", "--dir", tmp_path / "acme", cwd=tmp_path)
    assert result.returncode == 0, str(result)
    plugin = tmp_path / "acme"
    assert (plugin / "src" / "runner_acme_data" / "plugin.py").is_file()
    site = pip_install(plugin, tmp_path / "site")
    env = {"PYTHONPATH": str(site)}

    listed = run_cli("plugins", env_extra=env)
    assert listed.returncode == 0, str(listed)
    assert (
        "runner-acme-data 0.1.0 (acme-data)\n"
        "  callbacks: acme_data_divergence\n"
        "  datasets: acme_data_blobs\n"
        "  hooks: register_callbacks, register_datasets\n"
    ) in listed.stdout, str(listed)
    doctor = run_cli("plugins", "doctor", env_extra=env)
    assert doctor.returncode == 0, str(doctor)
    check = run_cli("recipe", "check", plugin / "examples" / "acme-data.toml", env_extra=env)
    assert check.returncode == 0, str(check)

    tests = run_python("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin, env_extra=env, timeout=600)
    assert tests.returncode == 0, str(tests)
    assert re.search(r"\b\d+ passed\b", tests.stdout) and "failed" not in tests.stdout, str(tests)


@pytest.mark.slow  # starts processes
def test_new_plugin_refuses_a_non_empty_directory_and_bad_names(run_cli: Any, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").touch()
    result = run_cli("new-plugin", "x", "--dir", tmp_path / "taken", cwd=tmp_path)
    assert result.returncode == 2 and "already exists and is not an empty directory" in result.stderr, str(result)
    for bad in ("9lives", "Has Space", "runner-core"):
        result = run_cli("new-plugin", bad, cwd=tmp_path)
        assert result.returncode == 2 and result.error_lines, str(result)
    assert list((tmp_path).iterdir()) == [tmp_path / "taken"]


@pytest.mark.slow  # starts processes
def test_new_plugin_templates_are_package_data() -> None:
    """The templates ship inside runner-core (hatch packages src/runner whole)."""
    from runner._cli.tools.scaffold import PluginNames, render_plugin

    files = render_plugin(PluginNames.from_name("runner-demo"))
    assert sorted(files) == [
        ".gitignore",
        "CHANGELOG.md",
        "README.md",
        "examples/demo.toml",
        "pyproject.toml",
        "src/runner_demo/__init__.py",
        "src/runner_demo/callbacks.py",
        "src/runner_demo/components.py",
        "src/runner_demo/datasets.py",
        "src/runner_demo/plugin.py",
        "tests/test_components.py",
        "tests/test_plugin.py",
        "tests/test_run.py",
    ]
    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["entry-points"]["runner"] == {"demo": "runner_demo.plugin"}
    assert pyproject["project"]["dependencies"] == ["runner-core>=0.1,<0.2"]
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
    done = subprocess.run(
        [sys.executable, "-c", "import runner._cli.tools.scaffold, sys; assert 'torch' not in sys.modules"], check=False
    )
    assert done.returncode == 0
