"""runner-vision and runner-hf installed: their components are listed; left out: their recipes name the distribution;
the torchvision import fix both carry is one text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


@pytest.mark.slow  # starts processes
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


@pytest.mark.slow  # starts processes
def test_installed_they_list_their_components(run_cli: Any) -> None:
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, str(result)
    listed = {p["distribution"]: p for p in json.loads(result.stdout)["plugins"]}
    assert listed["runner-vision"]["components"] == {
        "dataset": ["cifar10", "cifar100", "fashion_mnist", "image_folder", "mnist"],
        "model": ["efficientnet", "resnet", "vit"],
        "transform": ["torchvision"],
    }
    assert listed["runner-hf"]["components"] == {
        "collate": ["dynamic_padding"],
        "dataset": ["hf_dataset", "tokenized"],
        "model": ["transformer"],
        "processor": ["tokenize"],
        "task": ["causal_lm", "text_classification"],
    }
    assert listed["runner-vision"]["commands"] == ["vision"] and listed["runner-hf"]["commands"] == ["hf"]


def test_both_carry_the_same_torchvision_import_fix() -> None:
    # Independent distributions cannot import each other: each ships tv.py, and the copies stay equal.
    plugins = Path(__file__).resolve().parents[1] / "plugins"
    vision = (plugins / "runner-vision/src/runner_vision/tv.py").read_text(encoding="utf-8")
    hf = (plugins / "runner-hf/src/runner_hf/tv.py").read_text(encoding="utf-8")
    assert vision == hf
    assert "runner_vision.tv" in vision and "runner_hf.tv" in vision
