"""Bad data input through the CLI: one clear line each, exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.testing import run_cli as runner_cli

RECIPE = """
[run]
name = "bad"
epochs = 1
[data.train]
dataset = {dataset}
{extra}
[model]
name = "mlp"
[task]
name = "classification"
[optimizer]
name = "sgd"
lr = 0.1
"""

SAMPLER_PLUGIN = '''
from runner import hookimpl


class Forgetful:
    """Yields indices in order but has no state_dict/load_state_dict."""

    def __init__(self, dataset, seed):
        self.n = len(dataset)

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@hookimpl
def register_samplers(register):
    register("forgetful", Forgetful)
'''


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, _, err = runner_cli(*args)
    return code, err


def recipe(tmp_path: Path, dataset: str, extra: str = "") -> str:
    path = tmp_path / "bad.toml"
    path.write_text(RECIPE.format(dataset=dataset, extra=extra))
    return str(path)


def train(tmp_path: Path, capsys: pytest.CaptureFixture[str], dataset: str, extra: str = "") -> tuple[int, str]:
    return run_cli(capsys, "run", recipe(tmp_path, dataset, extra), "--run-dir", str(tmp_path / "run"), "--no-progress")


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = train(tmp_path, capsys, f'{{ name = "csv", path = "{tmp_path}/nope.csv", label = "y" }}')
    # Reported by recipe validation, before anything runs: file, line, column and key.
    assert code == 2 and "bad.toml:6:27: data.train.dataset.path: no such file or directory: " in err
    assert "nope.csv'" in err


def test_malformed_csv_row_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n1,2,3,4\n")
    code, err = train(tmp_path, capsys, f'{{ name = "csv", path = "{tmp_path}/d.csv", label = "y" }}')
    assert code == 2 and "d.csv:3: malformed row: expected 3 fields, found 4" in err


def test_wrong_column_name_suggests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n")
    code, err = train(tmp_path, capsys, f'{{ name = "csv", path = "{tmp_path}/d.csv", label = "lable" }}')
    assert code == 2 and "no column 'lable' (did you mean 'label'?)" in err


def test_unknown_collate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recipe(tmp_path, '{ name = "digits", split = "train" }', 'collate = { name = "padd" }')
    code, err = run_cli(capsys, "recipe", "check", path)
    assert code == 2 and "data.train.collate.name: unknown collate 'padd' (did you mean 'pad'?)" in err


def test_non_resumable_sampler_with_checkpointing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "forgetful.py"
    plugin.write_text(SAMPLER_PLUGIN)
    extra = 'sampler = { name = "forgetful" }\n[checkpoint]\nname = "default"'
    path = recipe(tmp_path, '{ name = "digits", split = "train" }', extra)
    code, err = run_cli(capsys, "-p", str(plugin), "recipe", "check", path)
    assert code == 2
    assert "data.train.sampler.name: TypeError: sampler 'forgetful'" in err and "not resumable" in err


def test_bad_split_name_lists_the_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(capsys, "recipe", "check", recipe(tmp_path, '{ name = "digits", split = "trian" }'))
    assert code == 2 and "unknown split 'trian'; expected one of:" in err


def test_process_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "proc.py"
    plugin.write_text(
        "from runner import hookimpl\n\nclass P:\n    def process(self, inputs):\n        return {}\n\n"
        "@hookimpl\ndef register_processors(register):\n    register('p', P)\n"
    )
    extra = f'[[process]]\nname = "p"\ninputs = ["{tmp_path}/missing.txt"]\ncache_dir = "{tmp_path}/cache"'
    path = recipe(tmp_path, '{ name = "digits", split = "train" }', extra)
    code, err = run_cli(capsys, "-p", str(plugin), "process", path)
    assert code == 2 and "bad.toml:9:11: process[0].inputs[0]: no file matches " in err
    assert "missing.txt'" in err
