"""Every shipped recipe validates, smoke-runs, and round-trips through ``runner recipe show``.

Parametrized over ``recipes/*.toml`` at collection time, so a new recipe is covered
without touching this file.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
RECIPES = sorted(RECIPES_DIR.glob("*.toml"))
each_recipe = pytest.mark.parametrize("recipe", RECIPES, ids=[p.name for p in RECIPES])

#: Recipes whose data is generated, not shipped: the ``runner`` command that writes it (small).
#: It runs in a temporary directory, and a copy of the recipe runs there, so data paths relative
#: to the working directory and [[process]] inputs relative to the recipe both find it.
GENERATED_DATA = {
    "image_folder_finetune.toml": ("vision", "shapes", "data/shapes", "--train", "4", "--val", "2"),
    "text_classification.toml": ("hf", "demo-data", "data/text", "--train", "12", "--val", "6"),
}


def load(path: Path) -> dict[str, Any]:
    """The recipe as composed (extends, defaults) and interpolated, before validation."""
    from runner._recipe.source import read_recipe

    return read_recipe(path).data


def missing_from(original: Any, resolved: Any, where: str = "") -> list[str]:
    """Keys and values of ``original`` that ``resolved`` lost or changed (resolving only adds defaults)."""
    if isinstance(original, dict):
        if not isinstance(resolved, dict):
            return [f"{where or '<root>'}: table became {resolved!r}"]
        problems = []
        for key, value in original.items():
            path = f"{where}.{key}" if where else key
            if key not in resolved:
                problems.append(f"{path}: missing")
            else:
                problems += missing_from(value, resolved[key], path)
        return problems
    if isinstance(original, list) and original and all(isinstance(item, dict) for item in original):
        if not isinstance(resolved, list) or len(resolved) != len(original):
            return [f"{where}: array of tables became {resolved!r}"]
        return [p for i, item in enumerate(original) for p in missing_from(item, resolved[i], f"{where}[{i}]")]
    if isinstance(original, list) and isinstance(resolved, list) and len(original) == len(resolved):
        return [p for i, item in enumerate(original) for p in missing_from(item, resolved[i], f"{where}[{i}]")]
    if (
        isinstance(original, str)
        and isinstance(resolved, str)
        and resolved.startswith("/")
        and resolved.endswith("/" + original.lstrip("./"))
    ):
        return []  # a path, resolved against the recipe's directory
    return [] if original == resolved else [f"{where}: {original!r} became {resolved!r}"]


def test_recipes_exist() -> None:
    assert RECIPES, f"no recipes in {RECIPES_DIR}: the parametrized recipe tests below would silently cover nothing"


def with_its_data(recipe: Path, run_cli, tmp_path: Path) -> tuple[Path, Path | None]:
    """``recipe`` ready to check or run, and the directory to run it from: a recipe whose
    data a command generates is copied into ``tmp_path`` beside that data (recipe check
    reports missing data files, as it should)."""
    generate = GENERATED_DATA.get(recipe.name)
    if not generate:
        return recipe, None
    made = run_cli(*generate, cwd=tmp_path)
    assert made.returncode == 0, str(made)
    return Path(shutil.copy(recipe, tmp_path / recipe.name)), tmp_path


@pytest.mark.slow  # starts processes
@each_recipe
def test_recipe_checks(recipe: Path, run_cli, tmp_path: Path) -> None:
    recipe, cwd = with_its_data(recipe, run_cli, tmp_path)
    result = run_cli("recipe", "check", recipe, cwd=cwd)
    assert result.returncode == 0, str(result)
    assert result.stdout == f"{recipe}: ok\n", str(result)


@pytest.mark.slow  # starts processes
@each_recipe
def test_recipe_smoke_runs(recipe: Path, run_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    overrides = ("-o", "run.max_steps=3", "-o", "run.max_val_batches=1")
    recipe, cwd = with_its_data(recipe, run_cli, tmp_path)
    env = {"RUNNER_CACHE_DIR": str(tmp_path / "cache"), "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    result = run_cli("run", recipe, *overrides, "--run-dir", run_dir, "--no-progress", cwd=cwd, env_extra=env)
    assert result.returncode == 0, str(result)
    name = load(recipe).get("run", {}).get("name", "run")
    summary = result.stdout.strip()
    assert "\n" not in summary, str(result)
    assert summary.startswith(f"{name}: 3 steps, ") and summary.endswith(f" -> {run_dir}"), summary
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records, "a 3-step run with validation or test loaders logs at least their metrics"
    assert max(r["step"] for r in records) == 3, records
    # The run directory keeps the fully resolved recipe it ran, overrides included.
    shown = run_cli("recipe", "show", recipe, *overrides)
    assert shown.returncode == 0, str(shown)
    assert (run_dir / "recipe.toml").read_text(encoding="utf-8") == shown.stdout
    resolved = tomllib.loads(shown.stdout)
    assert resolved["run"]["max_steps"] == 3 and resolved["run"]["max_val_batches"] == 1


@pytest.mark.slow  # starts processes
@each_recipe
def test_recipe_show_output_validates_and_is_idempotent(recipe: Path, run_cli, tmp_path: Path) -> None:
    recipe, cwd = with_its_data(recipe, run_cli, tmp_path)
    shown = run_cli("recipe", "show", recipe, cwd=cwd)
    assert shown.returncode == 0, str(shown)
    assert missing_from(load(recipe), tomllib.loads(shown.stdout)) == [], shown.stdout

    resolved = tmp_path / "shown" / recipe.name
    resolved.parent.mkdir()
    resolved.write_text(shown.stdout, encoding="utf-8")
    check = run_cli("recipe", "check", resolved, cwd=cwd)
    assert check.returncode == 0, str(check)
    again = run_cli("recipe", "show", resolved, cwd=cwd)
    assert again.returncode == 0, str(again)
    assert again.stdout == shown.stdout
