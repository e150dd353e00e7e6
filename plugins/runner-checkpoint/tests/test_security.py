"""Nothing is ever unpickled from a checkpoint, even with torch's safety switched off."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from ckpt_helpers import Cli, cli_fixture, isolate_process_state, run_main, write_recipe  # noqa: F401 (fixtures)

import runner_checkpoint
from runner_checkpoint.manifest import seal


class Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("small")
    recipe = write_recipe(root / "recipe.toml", **{"run.max_steps": 6, "run.epochs": None})
    assert run_main("run", recipe, "--run-dir", root / "run", "--no-progress") == 0
    return root


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A malicious .pt file and the marker it would create; torch's weights-only guard is off."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the control: this payload really runs
    assert marker.exists()
    marker.unlink()
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    return path, marker


def test_planted_pickles_are_refused_without_executing(
    cli: Cli, small_run: Path, tmp_path: Path, evil: tuple[Path, Path]
) -> None:
    payload, marker = evil
    recipe = small_run / "recipe.toml"
    run_dir = tmp_path / "run"
    shutil.copytree(small_run / "run", run_dir)
    latest = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text().strip()

    # 1. Extra pickles next to the real files are never looked at.
    for name in ("evil.pt", "model.pt", "optimizer.pt", "state.pkl"):
        shutil.copy(payload, latest / name)
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", "--no-progress")
    assert result.code == 0, result.err
    assert not marker.exists()
    assert (
        "not in the manifest (never loaded): evil.pt, model.pt, optimizer.pt, state.pkl"
        in cli("checkpoints", "verify", latest).out
    )

    # 2. A pickle in place of a tensor file fails its hash.
    shutil.copy(payload, latest / "model.safetensors")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", latest, "--no-progress")
    assert result.code == 2 and "model.safetensors: size expected" in result.err
    assert not marker.exists()

    # 3. With the manifest rewritten and re-sealed to match, it still is not safetensors.
    manifest = json.loads((latest / "manifest.json").read_text(encoding="utf-8"))
    data = payload.read_bytes()
    manifest["files"]["model.safetensors"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (latest / "manifest.json").write_text(json.dumps(seal(manifest)), encoding="utf-8")
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", latest, "--no-progress")
    assert result.code == 2 and "model.safetensors: not a safetensors file" in result.err
    assert not marker.exists()

    # 4. Pointing --resume at the pickle itself is refused.
    result = cli("run", recipe, "--run-dir", run_dir, "--resume", payload, "--no-progress")
    assert result.code == 2 and "not a checkpoint" in result.err
    for command in ("list", "verify", "show"):
        cli("checkpoints", command, run_dir)
    assert not marker.exists()


def test_the_plugin_has_no_unpickling_code_path() -> None:
    """No module of the plugin can deserialize with pickle: no pickle-family import, no
    ``torch.load``/``np.load``, no ``weights_only``/``allow_pickle`` switches."""
    unsafe_modules = {"pickle", "_pickle", "cPickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}
    offenders = []
    for path in sorted(Path(runner_checkpoint.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            if unsafe_modules & set(names):
                offenders.append(f"{path.name}:{node.lineno}: imports {names}")
            if (
                isinstance(node, ast.Attribute)
                and node.attr in {"load", "loads", "Unpickler"}
                and isinstance(node.value, ast.Name)
                and node.value.id in {"torch", "np", "numpy", *unsafe_modules}
            ):
                offenders.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.keyword) and node.arg in {"weights_only", "allow_pickle"}:
                offenders.append(f"{path.name}:{node.value.lineno}: {node.arg}=")
    assert offenders == []
