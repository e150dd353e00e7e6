"""A plugin written before ``@runner.component`` keeps working, installed as a real distribution.

``tests/fixtures/runner-legacy`` registers the tutorial's components the older ways: a
factory with ``params=`` (deprecated) and a bare factory whose signature is the schema.
It lists, validates and trains as before; only the tools plugin authors run, ``runner
plugins doctor`` and ``runner.testing``'s ``check_components``, say that the first form
is deprecated and what to write instead. Users of the plugin see no warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

LEGACY = Path(__file__).resolve().parent / "fixtures" / "runner-legacy"
RECIPE = LEGACY / "examples" / "legacy.toml"


def deprecation(kind: str, name: str, params: str, plugin: str = "runner-legacy 0.1.0") -> str:
    return (
        f"plugin {plugin}: {kind} {name!r} is registered with params= and a separate factory, which is "
        f"deprecated: make {params} the component (decorate it with @runner.component and move the factory's body "
        f"into its build(self, ...) method), then register the class alone: "
        f"register({name!r}, 'runner_legacy.params:{params}')"
    )


@pytest.mark.slow  # starts processes
def test_it_is_listed_without_warnings(installed: Any, run_cli: Any) -> None:
    result = run_cli("plugins", env_extra=installed.env("runner-legacy"))
    assert result.returncode == 0, str(result)
    assert (
        "runner-legacy 0.1.0 (legacy)\n"
        "  callbacks: legacy_loss_threshold, legacy_stop_after\n"
        "  datasets: legacy_spirals\n"
        "  hooks: register_callbacks, register_datasets\n"
    ) in result.stdout, str(result)
    assert result.stderr == "", str(result)


@pytest.mark.slow  # starts processes
def test_its_recipes_validate_with_every_problem_reported(installed: Any, run_cli: Any) -> None:
    env = installed.env("runner-legacy")
    check = run_cli("recipe", "check", RECIPE, env_extra=env)
    assert check.returncode == 0 and check.stdout == f"{RECIPE}: ok\n" and check.stderr == "", str(check)
    overrides = ("-o", "data.train.dataset.split=training", "-o", "callbacks.1.steps=two")
    bad = run_cli("recipe", "check", RECIPE, *overrides, env_extra=env)
    assert bad.returncode == 2, str(bad)
    assert bad.error_lines == [
        "<command line> -o callbacks.1.steps=two: callbacks[1].steps: expected int, found str 'two'",
        "<command line> -o data.train.dataset.split=training: data.train.dataset.split: expected one of 'train', "
        "'val', 'test', found str 'training' (did you mean 'train'?)",
        "recipe invalid: 2 problems",
    ], str(bad)


@pytest.mark.slow
def test_it_trains(installed: Any, run_cli: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("run", RECIPE, "--run-dir", run_dir, "--no-progress", env_extra=installed.env("runner-legacy"))
    assert result.returncode == 0 and "Warning" not in result.stderr, str(result)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in records if r["stage"] == "train"] == [1, 2, 3]
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["stop_reason"] == "stop_after 3"


@pytest.mark.slow  # starts processes
def test_doctor_says_how_to_declare_the_deprecated_components(installed: Any, run_cli: Any) -> None:
    result = run_cli("plugins", "doctor", env_extra=installed.env("runner-legacy"))
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == "no problems found", str(result)
    assert [line for line in result.stderr.splitlines() if line.startswith("warning: ")] == [
        f"warning: {deprecation('dataset', 'legacy_spirals', 'SpiralsParams')}",
        f"warning: {deprecation('callback', 'legacy_loss_threshold', 'LossThresholdParams')}",
    ], str(result)


CHECK_COMPONENTS = """
import json, tempfile, warnings
from pathlib import Path
import runner_legacy.plugin
from runner.testing import RunnerTester

examples = {("dataset", "legacy_spirals"): {"split": "train"}, ("callback", "legacy_loss_threshold"): {"threshold": 1}}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    problems = RunnerTester(Path(tempfile.mkdtemp())).check_components(runner_legacy.plugin, examples)
print(json.dumps({"problems": problems, "warnings": [str(w.message) for w in caught]}))
"""


@pytest.mark.slow  # starts processes
def test_check_components_warns_once_per_deprecated_component(installed: Any, run_python: Any) -> None:
    result = run_python("-c", CHECK_COMPONENTS, env_extra=installed.env("runner-legacy"))
    assert result.returncode == 0, str(result)
    report = json.loads(result.stdout)
    assert report["problems"] == []
    assert sorted(report["warnings"]) == sorted(
        [
            deprecation("dataset", "legacy_spirals", "SpiralsParams", plugin="runner_legacy.plugin test"),
            deprecation("callback", "legacy_loss_threshold", "LossThresholdParams", plugin="runner_legacy.plugin test"),
        ]
    )


WITHOUT_TORCH = """
import sys
from runner._cli.main import main

try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
"""


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("command", [("recipe", "check", str(RECIPE)), ("plugins", "doctor")], ids=["check", "doctor"])
def test_checking_and_doctoring_import_no_factory_module(
    installed: Any, run_python: Any, command: tuple[str, ...]
) -> None:
    """Its factories' module imports torch: reading schemas and deprecations must not import it."""
    result = run_python("-c", WITHOUT_TORCH, *command, env_extra=installed.env("runner-legacy"))
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines()[-1] == "[]", str(result)
