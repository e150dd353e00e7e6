"""runner-vision and runner-hf installed: their components are listed; left out: their recipes name the distribution;
every plugin importing torchvision (itself, or through transformers or torchmetrics) goes through the core's fix."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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
    # The install hint, then (for a component with parameters) which of them were not checked.
    unchecked = r"(; its parameters \([a-z_, ]+\) are not checked)?"
    hint = re.compile(rf"; it is provided by {dist}: pip install {dist}{unchecked}$")
    for name in names:
        assert any(f"unknown {name}" in line and hint.search(line) for line in result.error_lines), str(result)
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


#: How each plugin first imports torchvision in a fresh process (directly, or before a library that imports it).
FIRST_IMPORTS = {
    "runner-vision": "from runner_vision.components import ResNet; ResNet(num_classes=3).build()",
    "runner-hf": "from runner_hf.offline import transformers; transformers()",
    "runner-models": "from runner_models.metrics import classification_metric; classification_metric('f1_macro', 3)",
}
REPORT = (
    "import torchvision, torchmetrics\n"
    "from runner._compat import torchvision as tv\n"
    "print(tv.schemas_declared(), tv.compiled_ops_available())\n"
)


@pytest.mark.slow
@pytest.mark.parametrize("plugin", sorted(FIRST_IMPORTS))
def test_whichever_plugin_imports_torchvision_first_it_imports_and_says_how(plugin: str) -> None:
    """Plain ``import torchvision`` fails on a CUDA torchvision wheel beside a CPU-only torch (this
    environment): after any plugin's first import it works, and the schemas were declared
    exactly when the compiled operators are missing, whichever plugin came first."""
    code = FIRST_IMPORTS[plugin] + "\n" + REPORT
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    declared, compiled = done.stdout.splitlines()[-1].split()
    assert declared == str(compiled == "False"), done.stdout
