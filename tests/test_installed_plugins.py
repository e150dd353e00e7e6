"""Third-party plugins installed as real distributions, driven through the ``runner`` CLI.

``runner-tutorial`` (tests/fixtures/runner-tutorial) is the plugin the docs tutorial
builds, pip-installed; the ``runner-broken-*`` and ``runner-duplicate`` distributions
(misbehaving_dists.py) misbehave on purpose. Each is installed into its own directory once
per session (see conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # every test here starts processes

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

TUTORIAL = Path(__file__).resolve().parent / "fixtures" / "runner-tutorial"
SPIRALS_RECIPE = TUTORIAL / "examples" / "spirals.toml"
BROKEN_IMPORT_LINE = (
    "plugin runner-broken-import 0.1.0 failed to load: "
    "ImportError: runner-broken-import needs the missing package 'not_installed_anywhere'"
)


def plugins_json(result: Any) -> dict[str, Any]:
    assert result.returncode == 0, str(result)
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def row_of(report: dict[str, Any], distribution: str) -> dict[str, Any] | None:
    rows = [row for row in report["plugins"] if row["distribution"] == distribution]
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def line_of(path: Path, text: str, after: str) -> int:
    """1-based number of the first line equal to ``text`` that follows the line ``after``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(after)
    return lines.index(text, start) + 1


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


# -- discovery and listing ---------------------------------------------------------------


def test_installed_tutorial_is_listed(installed, run_cli) -> None:
    result = run_cli("plugins", env_extra=installed.env("runner-tutorial"))
    assert result.returncode == 0, str(result)
    expected = (
        "runner-tutorial 0.1.0 (tutorial)\n"
        "  callbacks: loss_threshold\n"
        "  datasets: spirals\n"
        "  hooks: register_callbacks, register_datasets\n"
    )
    assert expected in result.stdout, str(result)
    assert "failed to load" not in result.stderr, str(result)


def test_installed_tutorial_is_described_in_json(installed, run_cli) -> None:
    report = plugins_json(run_cli("plugins", "--json", env_extra=installed.env("runner-tutorial")))
    assert row_of(report, "runner-tutorial") == {
        "name": "tutorial",
        "distribution": "runner-tutorial",
        "version": "0.1.0",
        "hooks": ["register_callbacks", "register_datasets"],
        "components": {"callback": ["loss_threshold"], "dataset": ["spirals"]},
        "commands": [],
    }
    assert report["failures"] == []
    # The workspace plugins are listed next to it, each under its own distribution.
    assert row_of(report, "runner-core") is not None


def test_uninstalled_tutorial_is_not_listed(run_cli) -> None:
    report = plugins_json(run_cli("plugins", "--json"))
    assert row_of(report, "runner-tutorial") is None
    assert all("spirals" not in row["components"].get("dataset", []) for row in report["plugins"])


# -- using its components ------------------------------------------------------------------


def test_recipe_using_tutorial_components_trains_and_stops_early(installed, run_cli, tmp_path: Path) -> None:
    env = installed.env("runner-tutorial")
    check = run_cli("recipe", "check", SPIRALS_RECIPE, env_extra=env)
    assert check.returncode == 0 and check.stdout == f"{SPIRALS_RECIPE}: ok\n", str(check)

    run_dir = tmp_path / "run"
    result = run_cli("run", SPIRALS_RECIPE, "--run-dir", run_dir, "--no-progress", env_extra=env)
    assert result.returncode == 0, str(result)

    logged = records(run_dir)
    train = [r for r in logged if r["stage"] == "train"]
    assert train, logged
    # The callback stopped training at the first logged loss under the threshold, no later.
    assert [r["loss"] < 0.1 for r in train] == [False] * (len(train) - 1) + [True], train
    stop = train[-1]
    assert stop["step"] < 100 * 16, "ran all 100 epochs of 16 steps: the callback never stopped the run"
    assert max(r["step"] for r in logged) == stop["step"]

    summary = result.stdout.strip()
    assert "\n" not in summary, str(result)
    assert summary.startswith(f"spirals: {stop['step']} steps, {stop['epoch'] + 1} epochs in "), summary
    assert f"; stopped: train loss {stop['loss']:.4f} < 0.1 at step {stop['step']} -> {run_dir}" in summary, summary
    assert json.loads((run_dir / "summary.json").read_text())["stop_reason"].startswith("train loss ")


def test_recipe_check_without_the_plugin_names_the_missing_dataset(run_cli) -> None:
    result = run_cli("recipe", "check", SPIRALS_RECIPE)
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert all(line.startswith("error: ") for line in result.stderr.splitlines()), str(result)
    train_line = line_of(SPIRALS_RECIPE, 'name = "spirals"', after="[data.train.dataset]")
    val_line = line_of(SPIRALS_RECIPE, 'name = "spirals"', after="[data.val.main.dataset]")
    callback_line = line_of(SPIRALS_RECIPE, 'name = "loss_threshold"', after="[[callbacks]]")
    missing = r"; registered \w+s: .*"
    patterns = [
        rf"{re.escape(str(SPIRALS_RECIPE))}:{train_line}:\d+: data\.train\.dataset\.name: unknown dataset 'spirals'",
        rf"{re.escape(str(SPIRALS_RECIPE))}:{val_line}:\d+: data\.val\.main\.dataset\.name: unknown dataset 'spirals'",
        rf"{re.escape(str(SPIRALS_RECIPE))}:{callback_line}:\d+: callbacks\[0\]\.name: unknown callback "
        r"'loss_threshold'",
        r"recipe invalid: 3 problems",
    ]
    lines = result.error_lines
    assert len(lines) == len(patterns), str(result)
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern + (missing if "unknown" in pattern else ""), line), (line, pattern)


# -- misbehaving plugins -------------------------------------------------------------------


def test_broken_import_is_reported_and_the_others_still_work(installed, run_cli) -> None:
    env = installed.env("runner-tutorial", "runner-broken-import")
    listing = run_cli("plugins", env_extra=env)
    assert listing.returncode == 0, str(listing)
    assert BROKEN_IMPORT_LINE in listing.stderr.splitlines(), str(listing)
    assert "runner-tutorial 0.1.0 (tutorial)" in listing.stdout, str(listing)
    assert "runner-broken-import" not in listing.stdout, str(listing)

    report = plugins_json(run_cli("plugins", "--json", env_extra=env))
    assert report["failures"] == [
        {
            "name": "broken_import",
            "distribution": "runner-broken-import",
            "version": "0.1.0",
            "error": BROKEN_IMPORT_LINE.split("failed to load: ", 1)[1],
        }
    ]
    assert row_of(report, "runner-tutorial") is not None

    check = run_cli("recipe", "check", SPIRALS_RECIPE, env_extra=env)
    assert check.returncode == 0, str(check)


def test_unknown_component_errors_mention_plugins_that_failed_to_load(installed, run_cli) -> None:
    """When a component is missing, the user learns that some plugin did not load."""
    result = run_cli("recipe", "check", SPIRALS_RECIPE, env_extra=installed.env("runner-broken-import"))
    assert result.returncode == 2, str(result)
    unknown = [line for line in result.error_lines if "unknown dataset 'spirals'" in line]
    # The note comes before what could not be checked without the component's declaration.
    assert unknown and all(f"; note: {BROKEN_IMPORT_LINE}; its parameters (" in line for line in unknown), str(result)


def test_disabling_the_broken_plugin_silences_it(installed, run_cli) -> None:
    env = installed.env("runner-tutorial", "runner-broken-import", RUNNER_DISABLE_PLUGINS="runner-broken-import")
    listing = run_cli("plugins", env_extra=env)
    assert listing.returncode == 0 and listing.stderr == "", str(listing)
    assert "runner-tutorial 0.1.0 (tutorial)" in listing.stdout, str(listing)
    assert plugins_json(run_cli("plugins", "--json", env_extra=env))["failures"] == []


BROKEN_HOOK_LINE = (
    "plugin runner-broken-hook 0.1.0 failed to load: "
    "hook register_datasets raised RuntimeError: dataset index unreachable"
)


def test_raising_registration_hook_is_a_load_failure_naming_its_distribution(installed, run_cli) -> None:
    """A plugin whose register_* hook raises is left out whole, like one that fails to import."""
    env = installed.env("runner-tutorial", "runner-broken-hook")
    check = run_cli("recipe", "check", SPIRALS_RECIPE, env_extra=env)
    assert check.returncode == 0, str(check)
    unknown = run_cli("recipe", "check", SPIRALS_RECIPE, "-o", "data.train.dataset.name=nope", env_extra=env)
    assert unknown.returncode == 2, str(unknown)
    assert unknown.error_lines[0].endswith(f"; note: {BROKEN_HOOK_LINE}"), str(unknown)
    assert "Traceback" not in unknown.stderr, str(unknown)


def test_plugins_command_survives_a_raising_registration_hook(installed, run_cli) -> None:
    """``runner plugins`` is the diagnostic tool: it must list the healthy plugins and report the broken one."""
    result = run_cli("plugins", env_extra=installed.env("runner-tutorial", "runner-broken-hook"))
    assert result.returncode == 0, str(result)
    assert "runner-tutorial 0.1.0 (tutorial)" in result.stdout, str(result)
    assert BROKEN_HOOK_LINE in result.stderr.splitlines(), str(result)
    assert "runner-broken-hook" not in result.stdout, str(result)


CLASH_LINE = (
    "dataset 'spirals' is registered by 2 plugins, runner-duplicate 0.1.0 and runner-tutorial 0.1.0: uninstall "
    "one, or disable it: -p no:runner-tutorial (or RUNNER_DISABLE_PLUGINS=runner-tutorial)"
)


def test_a_name_clash_is_a_warning_for_listings_and_an_error_for_recipes_using_it(installed, run_cli) -> None:
    """Plugins load sorted by entry-point name ('duplicate' < 'tutorial'): the clash names
    both distributions in load order; only recipes naming 'spirals' are refused."""
    env = installed.env("runner-tutorial", "runner-duplicate")
    for args in (("--help",), ("plugins",)):
        listing = run_cli(*args, env_extra=env)
        assert listing.returncode == 0, str(listing)
        assert listing.stderr.splitlines() == [f"warning: {CLASH_LINE}"], str(listing)
    assert "runner-tutorial 0.1.0 (tutorial)\n  callbacks: loss_threshold\n  datasets: spirals\n" in listing.stdout

    check = run_cli("recipe", "check", SPIRALS_RECIPE, env_extra=env)
    assert check.returncode == 2, str(check)
    name_line = 'name = "spirals"'
    located = [
        f"{SPIRALS_RECIPE}:{line_of(SPIRALS_RECIPE, name_line, after=table)}:1: {table[1:-1]}.name: {CLASH_LINE}"
        f"; its parameters ({params}) are not checked"  # which of the two declarations applies is unknown
        for table, params in (("[data.train.dataset]", "split"), ("[data.val.main.dataset]", "split, num_samples"))
    ]
    assert check.error_lines == [*located, "recipe invalid: 2 problems"], str(check)
    assert "Traceback" not in check.stderr

    other = run_cli("recipe", "check", RECIPES / "digits.toml", env_extra=env)
    assert other.returncode == 0, str(other)  # a recipe that does not name 'spirals' is unaffected


def test_dash_p_no_disables_an_installed_plugin(installed, run_cli) -> None:
    env = installed.env("runner-tutorial")
    for spec in ("no:runner-tutorial", "no:tutorial"):  # distribution or entry-point name
        report = plugins_json(run_cli("-p", spec, "plugins", "--json", env_extra=env))
        assert row_of(report, "runner-tutorial") is None, (spec, report)
        assert row_of(report, "runner-core") is not None


@pytest.mark.parametrize("dist", ["runner-broken-hook", "runner-duplicate"])
def test_dash_p_no_disables_a_plugin_whose_registration_fails(installed, run_cli, dist: str) -> None:
    """``--help`` says "'no:NAME' disables one": it should rescue the user as RUNNER_DISABLE_PLUGINS does."""
    env = installed.env("runner-tutorial", dist)
    result = run_cli("-p", f"no:{dist}", "recipe", "check", SPIRALS_RECIPE, env_extra=env)
    assert result.returncode == 0, str(result)


# -- the tutorial distribution's own tests -------------------------------------------------


def test_tutorial_own_test_suite_passes_against_the_installed_distribution(installed, run_python) -> None:
    done = run_python(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=TUTORIAL, env_extra=installed.env("runner-tutorial")
    )
    assert done.returncode == 0, str(done)
    assert re.search(r"\b\d+ passed\b", done.stdout) and "failed" not in done.stdout, str(done)
