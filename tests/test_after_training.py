"""After training, end to end with the real command and the bundled plugins: a digits run
predicts (one process and two DDP ranks, on a split and on a CSV file) and exports
(ONNX checked under onnxruntime here too, torch.export, TorchScript); failing exports
name the operator and the module. Everything here trains or spawns: slow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.slow

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, run_cli: Any) -> Path:
    """A short digits run (20 steps), trained once for the module."""
    run_dir = tmp_path_factory.mktemp("after") / "digits"
    done = run_cli("run", DIGITS, "-o", "run.max_steps=20", "--run-dir", run_dir, "--no-progress")
    assert done.returncode == 0, done
    return run_dir


def test_predict_on_the_test_split_is_the_model_applied_to_it(digits: Path, run_cli: Any) -> None:
    import runner

    done = run_cli("predict", digits, "--split", "test")
    assert done.returncode == 0, done
    assert done.stdout.startswith("269 predictions with ") and "predictions/test.main.jsonl" in done.stdout
    written = rows(digits / "predictions" / "test.main.jsonl")
    loaded = runner.load(digits, device="cpu")
    inputs = torch.cat([batch[0] for batch in loaded.batches("test")])
    with torch.no_grad():
        probabilities = loaded.model(inputs).softmax(-1)
    assert [r["index"] for r in written] == list(range(269))
    assert [r["class"] for r in written] == probabilities.argmax(-1).tolist()
    assert torch.allclose(torch.tensor([r["probabilities"] for r in written]), probabilities, atol=1e-6)


def test_predict_with_two_ddp_ranks_keeps_the_dataset_order(digits: Path, run_cli: Any, tmp_path: Path) -> None:
    single, ranks = tmp_path / "single.jsonl", tmp_path / "ranks.jsonl"
    assert run_cli("predict", digits, "--split", "test", "--output", single).returncode == 0
    ddp = ("-o", "run.backend=ddp", "-o", "backend.nproc_per_node=2", "-o", "backend.process_group=gloo")
    done = run_cli("predict", digits, "--split", "test", "--output", ranks, "-o", "run.device=cpu", *ddp)
    assert done.returncode == 0, done
    one, two = rows(single), rows(ranks)
    assert [(r["index"], r["class"]) for r in two] == [(r["index"], r["class"]) for r in one]
    assert torch.allclose(
        torch.tensor([r["probabilities"] for r in two]), torch.tensor([r["probabilities"] for r in one]), atol=1e-6
    )


def test_predict_on_a_csv_file_with_the_training_columns(run_cli: Any, tmp_path: Path) -> None:
    """A run trained on a CSV predicts on another file of those columns, with or without the label."""
    header = "a,b,label\n"
    train = "".join(f"{x / 10},{1 - x / 10},{int(x > 4)}\n" for x in range(10))
    (tmp_path / "train.csv").write_text(header + train * 4, encoding="utf-8")
    (tmp_path / "new.csv").write_text("b,a\n0.9,0.1\n0.1,0.9\n", encoding="utf-8")  # other order, no label
    (tmp_path / "labelled.csv").write_text(header + "0.1,0.9,0\n0.9,0.1,1\n", encoding="utf-8")
    recipe = tmp_path / "csv.toml"
    recipe.write_text(
        '[run]\nname = "csv"\nmax_steps = 60\n'
        '[data.train]\ndataset = { name = "csv", path = "train.csv", label = "label" }\n'
        "loader = { batch_size = 8, shuffle = true }\n"
        '[model]\nname = "mlp"\nhidden = [8]\n[task]\nname = "classification"\n'
        '[optimizer]\nname = "adam"\nlr = 0.05\n',
        encoding="utf-8",
    )
    assert run_cli("run", recipe, "--run-dir", "run", "--no-progress", cwd=tmp_path).returncode == 0
    for name in ("new", "labelled"):
        done = run_cli("predict", "run", "--data", f"{name}.csv", cwd=tmp_path)
        assert done.returncode == 0, done
        # Columns are matched by name (new.csv has them in another order): a=0.1 is class 0, a=0.9 class 1.
        assert [r["class"] for r in rows(tmp_path / "run" / "predictions" / f"{name}.jsonl")] == [0, 1], name


def test_onnx_export_matches_eager_under_onnxruntime(digits: Path, run_cli: Any) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    import runner

    done = run_cli("export", digits, "--format", "onnx")
    assert done.returncode == 0, done
    difference = float(done.stdout.split("max abs difference to eager ")[1].split()[0])
    assert difference < 1e-4 and "on 256 samples (onnxruntime)" in done.stdout
    session = onnxruntime.InferenceSession(str(digits / "export" / "model.onnx"), providers=["CPUExecutionProvider"])
    loaded = runner.load(digits, device="cpu")
    inputs = torch.cat([batch[0] for batch in loaded.batches("test")])  # another split, another batch size
    (logits,) = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(logits), loaded.model(inputs), atol=1e-4)


@pytest.mark.parametrize(("fmt", "file"), [("torch-export", "model.pt2"), ("torchscript", "model.torchscript.pt")])
def test_torch_exports_match_eager(digits: Path, run_cli: Any, fmt: str, file: str, tmp_path: Path) -> None:
    output = tmp_path / file
    done = run_cli("export", digits, "--format", fmt, "--output", output, "--split", "test")
    assert done.returncode == 0, done
    assert output.is_file() and "max abs difference to eager 0 on 256 samples" in done.stdout


UNEXPORTABLE = """
import torch
from runner import hookimpl


class RunningMax(torch.nn.Module):
    def forward(self, x):
        return torch.cummax(x, dim=1).values  # no ONNX function for aten.cummax


class Gate(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
            return x
        return -x


class Net(torch.nn.Module):
    def __init__(self, in_features, num_classes, gate):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(in_features, num_classes), RunningMax())
        self.gate = Gate() if gate else torch.nn.Identity()

    def forward(self, x):
        return self.gate(self.body(x))


def net(ctx, gate: bool = True):
    return Net(ctx.meta["in_features"], ctx.meta["num_classes"], gate)


@hookimpl
def register_models(register):
    register("net", net)
"""


@pytest.mark.parametrize(
    ("gate", "fmt", "message"),
    [
        (
            True,
            "torch-export",
            "export to torch-export failed in module 'gate' (Gate, {plugin}:13): GuardOnDataDependentSymNode: ",
        ),
        (False, "onnx", "export to onnx failed at operator aten.cummax in module 'body.1' (RunningMax): "),
    ],
)
def test_a_failing_export_names_the_operator_and_the_module(
    run_cli: Any, tmp_path: Path, gate: bool, fmt: str, message: str
) -> None:
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    plugin = tmp_path / "unexportable.py"
    plugin.write_text(UNEXPORTABLE, encoding="utf-8")
    model = f"model={{ name = 'net', gate = {str(gate).lower()} }}"
    train = ("-o", "run.max_steps=2", "-o", model, "-o", "run.test=false", "-p", plugin)
    assert run_cli("run", DIGITS, *train, "--run-dir", tmp_path / "run", "--no-progress").returncode == 0
    done = run_cli("export", tmp_path / "run", "--format", fmt)
    assert done.returncode == 2, done
    assert len(done.error_lines) == 1 and "Traceback" not in done.stderr, done
    assert done.error_lines[0].startswith(message.format(plugin=plugin)), done


def test_a_model_loads_without_the_plugins_only_training_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trained with a TensorBoard logger; predicting needs only the model's, task's and data's plugins."""
    import runner

    allowed = "runner-models,runner-datasets,runner-tensorboard"
    monkeypatch.setenv("RUNNER_PLUGINS", allowed)
    logged = ["run.max_steps=3", "run.test=false", 'loggers=[{ name = "tensorboard" }]']
    result = runner.fit(DIGITS, overrides=logged, run_dir=tmp_path / "run")
    monkeypatch.setenv("RUNNER_PLUGINS", "runner-models,runner-datasets")
    loaded = runner.load(result.run_dir)
    assert loaded.recipe.loggers == () and loaded.recipe.model.name == "mlp"
    assert set(loaded.predict(next(loaded.batches("val")))) == {"class", "probabilities"}
