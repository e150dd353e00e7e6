"""Without runner-vision or runner-hf, their recipes fail validation naming the distribution to install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.parametrize(
    ("recipe", "plugin", "dist", "names"),
    [
        ("image_folder_finetune.toml", "vision", "runner-vision", ["dataset 'image_folder'", "model 'resnet'"]),
        ("text_classification.toml", "hf", "runner-hf", ["processor 'tokenize'", "model 'transformer'"]),
    ],
)
def test_recipe_without_its_plugin_names_the_distribution(
    run_cli: Any, recipe: str, plugin: str, dist: str, names: list[str]
) -> None:
    result = run_cli("recipe", "check", RECIPES / recipe, env_extra={"RUNNER_DISABLE_PLUGINS": plugin})
    assert result.returncode == 2, str(result)
    hint = f"it is provided by {dist}: pip install {dist}"
    for name in names:
        assert any(f"unknown {name}" in line and line.endswith(hint) for line in result.error_lines), str(result)
    assert "Traceback" not in result.stderr
