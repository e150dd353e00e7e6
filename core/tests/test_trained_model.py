"""Every run leaves a usable model: model.safetensors, alternative weights, model.json,
and the weights ``--checkpoint`` / ``checkpoint=`` choose (in-process, on the toy plugin)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from core_helpers import HERMETIC_ENV, TOY, write
from safetensors.torch import load_file

import runner
from runner._contract.errors import PluginError, RunnerError

PROBE = '\n[[callbacks]]\nname = "probe"\n'

#: A local plugin whose callback offers the final weights halved, under a name the test picks.
OFFER = """
from runner import hookimpl

class Offer:
    def __init__(self, label: str = "half", keys: str = "same") -> None:
        self.label, self.keys = label, keys

    def get_model_weights(self, run):
        state = run.model.state_dict()
        if self.keys == "fewer":
            state = dict(list(state.items())[:1])
        return {self.label: {key: value / 2 for key, value in state.items()}}

@hookimpl
def register_callbacks(register):
    register("offer", Offer)
"""


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the built-ins and local plugins load (installed plugins register an ``sgd`` too)."""
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)


def fit(toy_dir: Path, *overrides: str, extra: str = "", name: str = "run", plugins: tuple[str, ...] = ()) -> Path:
    recipe = write(toy_dir / f"{name}.toml", TOY + extra)
    return runner.fit(recipe, overrides=overrides, run_dir=toy_dir / name, plugins=plugins).run_dir


def test_a_run_writes_its_final_weights_and_what_rebuilds_the_model(toy_dir: Path) -> None:
    run_dir = fit(toy_dir, extra=PROBE)
    probe = json.loads((run_dir / "probe.json").read_text(encoding="utf-8"))
    saved = load_file(str(run_dir / "model.safetensors"))
    assert {key: value.tolist() for key, value in saved.items()} == probe["weights"]  # the weights at the end

    info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    assert info["model"] == {"name": "lin", "hidden": 0}
    assert info["task"] == {"name": "cls"}
    assert info["meta"] == {"in_features": 4, "num_classes": 2}  # what the model factory read
    assert info["trained"]["global_step"] == 16
    final = info["weights"]["final"]
    assert final["file"] == "model.safetensors" and final["size"] == (run_dir / "model.safetensors").stat().st_size
    toy_plugin = str((toy_dir / "toy_plugin.py").resolve())
    assert info["local_plugins"] == [toy_plugin]
    row = next(r for r in info["plugins"] if r["version"] == "local")
    assert row["path"] == toy_plugin and len(row["sha256"]) == 64
    assert {"runner-core", "torch", "python"} <= set(info["versions"])
    assert not list(run_dir.glob(".*tmp*"))  # written atomically, nothing left behind


def test_save_model_false_leaves_no_model(toy_dir: Path) -> None:
    run_dir = fit(toy_dir, "run.save_model=false")
    assert not (run_dir / "model.safetensors").exists() and not (run_dir / "model.json").exists()
    with pytest.raises(
        RunnerError, match=r"holds no trained model \(model.json\): it was trained with \[run\] save_model"
    ):
        runner.load(run_dir)


def test_a_callback_offers_alternative_weights(toy_dir: Path) -> None:
    plugin = write(toy_dir / "offer.py", OFFER)
    run_dir = fit(toy_dir, extra='\n[[callbacks]]\nname = "offer"\n', plugins=(str(plugin),))
    final, half = load_file(str(run_dir / "model.safetensors")), load_file(str(run_dir / "model.half.safetensors"))
    assert final.keys() == half.keys() and all(torch.equal(half[k], final[k] / 2) for k in final)
    info = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    assert info["weights"]["half"]["file"] == "model.half.safetensors"
    assert "callback:offer#0" in info["weights"]["half"]["from"]

    loaded = runner.load(run_dir, checkpoint="half")
    assert all(torch.equal(v, half[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.weights.endswith("model.half.safetensors")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ('label = "best"', "the name 'best', which runner reserves"),
        ('label = "a.b"', "names are letters, digits, '-' and '_'"),
        ('keys = "fewer"', "whose keys differ from the model's state_dict() (missing bias)"),
    ],
)
def test_bad_alternative_weights_name_the_callback(toy_dir: Path, params: str, message: str) -> None:
    plugin = write(toy_dir / "offer.py", OFFER)
    with pytest.raises(PluginError) as caught:
        fit(toy_dir, extra=f'\n[[callbacks]]\nname = "offer"\n{params}\n', plugins=(str(plugin),))
    assert "callback:offer#0" in str(caught.value) and message in str(caught.value)


def test_two_owners_cannot_offer_the_same_name(toy_dir: Path) -> None:
    plugin = write(toy_dir / "offer.py", OFFER)
    twice = '\n[[callbacks]]\nname = "offer"\n\n[[callbacks]]\nname = "offer"\n'
    with pytest.raises(
        PluginError, match=r"callback:offer#1 .* and callback:offer#0 .* both offer weights named 'half'"
    ):
        fit(toy_dir, extra=twice, plugins=(str(plugin),))


def test_load_gives_the_trained_model_in_eval_mode(toy_dir: Path) -> None:
    run_dir = fit(toy_dir)
    loaded = runner.load(run_dir)
    saved = load_file(str(run_dir / "model.safetensors"))
    assert not loaded.model.training
    assert all(torch.equal(v, saved[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.recipe.model.name == "lin" and loaded.task is not None
    batch = next(loaded.batches("val"))
    inputs, _ = batch
    assert torch.equal(
        loaded.predict(batch)["output"], loaded.model(inputs).detach()
    )  # the toy task has no predict_step
    assert torch.equal(loaded.predict(inputs)["output"], loaded.model(inputs).detach())  # inputs alone work too


def test_the_weights_files_are_checked_against_model_json(toy_dir: Path) -> None:
    run_dir = fit(toy_dir)
    weights = run_dir / "model.safetensors"
    copy = toy_dir / "copy.safetensors"
    copy.write_bytes(weights.read_bytes())
    assert runner.load(run_dir, checkpoint=str(copy)).weights == str(copy)  # a file given by path is read as is
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(RunnerError, match=r"does not match model.json .* changed or damaged since training"):
        runner.load(run_dir)
    with pytest.raises(RunnerError, match=r"checkpoint 'emaa': not weights of .* \(choose one of final, best, last"):
        runner.load(run_dir, checkpoint="emaa")
    with pytest.raises(RunnerError, match="checkpoint 'best': no plugin provides checkpoints"):
        runner.load(run_dir, checkpoint="best")


def test_a_run_dir_without_a_model_says_why(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="no such run directory"):
        runner.load(tmp_path / "nowhere")
    (tmp_path / "crashed").mkdir()
    with pytest.raises(RunnerError, match="its training has not finished"):
        runner.load(tmp_path / "crashed")


def test_an_edited_local_plugin_is_reported_when_loading(toy_dir: Path) -> None:
    run_dir = fit(toy_dir)
    plugin = toy_dir / "toy_plugin.py"
    plugin.write_text(plugin.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"local plugin .*toy_plugin.py changed since the model was trained"):
        runner.load(run_dir)


def test_a_moved_local_plugin_can_be_given_again(toy_dir: Path, tmp_path: Path) -> None:
    run_dir = fit(toy_dir)
    moved = tmp_path / "elsewhere" / "toy_plugin.py"
    moved.parent.mkdir()
    (toy_dir / "toy_plugin.py").rename(moved)
    with pytest.raises(RunnerError, match=r"trained with the local plugin .*toy_plugin.py, which no longer exists"):
        runner.load(run_dir)
    assert runner.load(run_dir, plugins=[str(moved)]).recipe.model.name == "lin"
