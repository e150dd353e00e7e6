"""Recipes reach user code only through registered functions (issue 18, item 1).

The ``list`` and ``generator`` producers and the ``map`` function name functions a plugin
registered with ``register_functions`` (here: a local plugin file the recipe lists); an
import path such as ``"subprocess:call"`` is an unknown name at ``runner recipe check``
and is never imported or called. A ``map`` function of the wrong signature names its
recipe key (item 7).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runner.testing import CliResult, run_cli

FUNCTIONS = '''
"""The example local plugin file of docs/data.md: the project's own data functions."""

import torch

from runner import hookimpl


def my_items(n, split):
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    return [(torch.randn(4, generator=generator), i % 2) for i in range(n)]


def my_stream(n, split):
    yield from my_items(n, split)


def jitter(sample, rng):
    x, y = sample
    return x + 0.01 * torch.from_numpy(rng.standard_normal(4).astype("float32")), y


def one_argument(sample):
    return sample


@hookimpl
def register_functions(register):
    register("my_items", my_items)
    register("my_stream", my_stream)
    register("jitter", jitter)
    register("one_argument", one_argument)
'''

RECIPE = """
plugins = ["plugins/my_data.py"]

[run]
name = "functions"
max_steps = 4

[data.train]
dataset = {{ name = "list", producer = "my_items", kwargs = {{ n = 32 }}, split = "train" }}
loader = {{ batch_size = 8 }}
transforms = [{{ name = "map", fn = "{fn}" }}]

[data.val.main]
dataset = {{ name = "generator", producer = "my_stream", kwargs = {{ n = 16 }}, length = 16, split = "val" }}
loader = {{ batch_size = 8 }}

[model]
name = "mlp"
in_features = 4
num_classes = 2

[task]
name = "classification"

[optimizer]
name = "sgd"
lr = 0.1
"""


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    return run_cli(*args)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "my_data.py").write_text(FUNCTIONS, encoding="utf-8")
    (tmp_path / "recipe.toml").write_text(RECIPE.format(fn="jitter"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_recipe_trains_on_functions_its_local_plugin_registers(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "run", "recipe.toml", "--no-progress")
    assert code == 0, err
    assert out.startswith("functions: 4 steps") and out.endswith(" -> runs/functions\n")
    records = [json.loads(line) for line in (project / "runs" / "functions" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["stage"] == "val" and records[-1]["key"] == "main"


def test_check_and_explain_say_the_recipe_runs_code(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "recipe", "check", "recipe.toml") == (
        0,
        "recipe.toml: this recipe runs code from: plugins/my_data.py\nrecipe.toml: ok\n",
        "",
    )
    code, out, _ = cli(capsys, "explain", "recipe.toml")
    assert code == 0 and out.startswith("recipe recipe.toml\nthis recipe runs code from: plugins/my_data.py\n\n")
    code, out, _ = cli(capsys, "explain", "--json", "recipe.toml")
    assert code == 0 and json.loads(out)["runs_code_from"] == ["plugins/my_data.py"]
    # an override that adds plugins says so too; a recipe without plugins is data
    data = RECIPE.format(fn="jitter").replace('plugins = ["plugins/my_data.py"]', "")
    (project / "data.toml").write_text(data, encoding="utf-8")
    code, out, _ = cli(capsys, "recipe", "check", "data.toml", "-o", 'plugins=["plugins/my_data.py"]')
    assert (code, out) == (0, "data.toml: this recipe runs code from: plugins/my_data.py\ndata.toml: ok\n")


@pytest.mark.parametrize(
    ("key", "reference"),
    [
        ("data.train.dataset.producer", "subprocess:call"),
        ("data.val.main.dataset.producer", "subprocess:check_call"),
        ("data.train.transforms.0.fn", "os:system"),
    ],
)
def test_an_import_path_is_an_unknown_function_and_never_runs(
    project: Path, capsys: pytest.CaptureFixture[str], key: str, reference: str
) -> None:
    attack = ("-o", f'{key}="{reference}"', "-o", f'{key.rsplit(".", 1)[0]}.kwargs={{args = ["touch", "pwned"]}}')
    if key.endswith(".fn"):
        attack = ("-o", f'{key}="{reference}"')
    for command in (("recipe", "check"), ("run", "--no-progress")):
        code, _, err = cli(capsys, *command, "recipe.toml", *attack)
        assert code == 2, err
        assert f"unknown function '{reference}'; registered functions: jitter, my_items, my_stream, one_argument" in err
    assert not (project / "pwned").exists() and not (project / "runs").exists()


def test_a_misspelt_function_gets_a_did_you_mean(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "recipe", "check", "recipe.toml", "-o", "data.train.dataset.producer=my_itemz")
    assert code == 2
    assert "data.train.dataset.producer: unknown function 'my_itemz' (did you mean 'my_items'" in err


def test_a_map_function_of_the_wrong_signature_names_the_recipe_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "run", "recipe.toml", "--no-progress", "-o", "data.train.transforms.0.fn=one_argument")
    assert (code, out) == (2, "")
    assert err == (
        "error: data.train.transforms[0]: map: function 'one_argument' must take (sample, rng), "
        "but one_argument(sample): too many positional arguments\n"
    )


def test_the_data_guide_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """docs/data.md's local plugin file and recipe, as shown, check and train."""
    guide = (Path(__file__).resolve().parents[3] / "docs" / "data.md").read_text(encoding="utf-8")
    section = guide[guide.index("### Your own functions") : guide.index("### Combinators")]
    python, toml = re.findall(r"```(?:python|toml)\n(.*?)```", section, re.S)
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "my_data.py").write_text(python, encoding="utf-8")
    rest = '[run]\nmax_steps = 2\n[model]\nname = "mlp"\nin_features = 4\nnum_classes = 2\n'
    rest += '[task]\nname = "classification"\n[optimizer]\nname = "sgd"\nlr = 0.1\n'
    (tmp_path / "guide.toml").write_text(toml + rest, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "recipe", "check", "guide.toml")[:2] == (
        0,
        "guide.toml: this recipe runs code from: plugins/my_data.py\nguide.toml: ok\n",
    )
    code, out, err = cli(capsys, "run", "guide.toml", "--no-progress", "-o", "run.max_val_batches=2")
    assert code == 0 and out.startswith("run: 2 steps"), err
