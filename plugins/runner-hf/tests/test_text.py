"""tokenize through the processing cache, tokenized, dynamic_padding, transformer, tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from runner import DataError, StepInfo
from runner_hf.components import DynamicPadding, Tokenized, Transformer
from runner_hf.processor import Tokenize
from runner_hf.tasks import CausalLM, TextClassification

BERT = {
    "model_type": "bert",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 64, "bos_token_id": 1}
GPT2["eos_token_id"] = 1
PROCESS = """
[[process]]
name = "tokenize"
inputs = ["text/train.jsonl"]
tokenizer = "{tokenizer}"
max_length = 8
output = "train_tokens"

[run]
max_steps = 1
[data.train]
dataset = {{ name = "tokenized", output = "train_tokens" }}
collate = {{ name = "dynamic_padding" }}
loader = {{ batch_size = 4 }}
[model]
name = "transformer"
config = {{ model_type = "bert", hidden_size = 16, num_hidden_layers = 1, num_attention_heads = 2 }}
[task]
name = "text_classification"
"""


def test_tokenize_pads_rows_to_max_length_with_their_lengths(demo: Path) -> None:
    out = Tokenize(str(demo / "tokenizer.json"), max_length=8).process([str(demo / "train.jsonl")])
    assert out["input_ids"].shape == (30, 8) and out["label"].tolist()[:4] == [0, 1, 2, 0]
    assert out["length"].max() == 8 and (out["input_ids"][out["length"] < 8][:, -1] == 0).all()


def runner_process(recipe: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "runner", "process", str(recipe)]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=recipe.parent)


@pytest.mark.slow
def test_step_runs_through_the_cache_and_feeds_tokenized(demo: Path) -> None:
    recipe = demo.parent / "recipe.toml"
    recipe.write_text(PROCESS.format(tokenizer=demo / "tokenizer.json"))
    first, again = runner_process(recipe), runner_process(recipe)
    assert first.returncode == 0 and "processed 1 shard(s)" in first.stdout, first.stdout + first.stderr
    assert "nothing to do" in again.stdout, again.stdout + again.stderr
    dataset = Tokenized(output="train_tokens").build()
    sample = dataset[1]
    assert len(dataset) == 30 and sample["labels"] == 1 and 0 < len(sample["input_ids"]) <= 8
    assert dataset.meta == {"num_classes": 3} and len(dataset.lengths) == 30


def test_missing_output_and_tokenizer_are_clear_errors(demo: Path) -> None:
    with pytest.raises(DataError, match="no processed output 'nope'"):
        Tokenized(output="nope").build()
    with pytest.raises(DataError, match=r"tokenizer: .*missing\.json does not exist"):
        Tokenize(str(demo / "missing.json"))
    with pytest.raises(DataError, match=r"train.jsonl: no column \['body'\]"):
        Tokenize(str(demo / "tokenizer.json"), text_column="body").process([str(demo / "train.jsonl")])


def test_dynamic_padding_pads_to_the_batch_and_masks() -> None:
    samples = [
        {"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor(1)},
        {"input_ids": torch.tensor([8]), "labels": torch.tensor(0)},
    ]
    batch = DynamicPadding(pad_token_id=0).build()(samples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]] and batch["labels"].tolist() == [1, 0]
    causal = DynamicPadding(causal_lm=True, pad_to_multiple_of=4).build()(samples)
    assert causal["labels"].tolist() == [[5, 6, 7, -100], [8, -100, -100, -100]]
    with pytest.raises(DataError, match="expected dict samples with 'input_ids'"):
        DynamicPadding().build()([(torch.tensor([1]), 0)])


def test_dynamic_padding_takes_the_pad_token_id_from_the_dataset_meta(tmp_path: Path) -> None:
    from runner import BuildContext

    class Padded:
        meta = {"pad_token_id": 3}

    ctx = BuildContext(recipe=None, seed=0, run_dir=tmp_path, train_dataset=Padded())  # type: ignore[arg-type]
    samples = [{"input_ids": torch.tensor([5, 6])}, {"input_ids": torch.tensor([8])}]
    assert DynamicPadding().build(ctx)(samples)["input_ids"].tolist() == [[5, 6], [8, 3]]
    assert DynamicPadding(pad_token_id=1).build(ctx)(samples)["input_ids"].tolist() == [[5, 6], [8, 1]]


class Meta:
    meta = {"num_classes": 3}


def context(tmp_path: Path) -> Any:
    from runner import BuildContext

    return BuildContext(recipe=None, seed=0, run_dir=tmp_path, train_dataset=Meta())  # type: ignore[arg-type]


@pytest.mark.slow  # takes seconds
def test_transformer_from_config_then_from_its_saved_folder(demo: Path, tmp_path: Path) -> None:
    model = Transformer(config=BERT, tokenizer=str(demo / "tokenizer.json")).build(context(tmp_path))
    assert model.config.num_labels == 3 and model.config.pad_token_id == 0
    assert model.config.vocab_size == Tokenize(str(demo / "tokenizer.json")).tokenizer.get_vocab_size()
    model.save_pretrained(str(tmp_path / "saved"))
    loaded = Transformer(path=str(tmp_path / "saved")).build(context(tmp_path))
    assert torch.equal(loaded.classifier.weight, model.classifier.weight)
    with pytest.raises(DataError, match=r"has no config\.json"):
        Transformer(path=str(tmp_path)).build(context(tmp_path))


def test_tasks_take_named_field_batches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    samples = [
        {"input_ids": torch.tensor([5, 6, 7]), "labels": torch.tensor(1)},
        {"input_ids": torch.tensor([8]), "labels": torch.tensor(2)},
    ]
    batch = DynamicPadding().build()(samples)
    classifier = Transformer(config={**BERT, "vocab_size": 10}).build(context(tmp_path))
    classifier.eval()
    out = TextClassification().val_step(classifier, batch, StepInfo.__new__(StepInfo))
    assert out.count == 2 and out.loss is not None and 0 <= float(out.metrics["accuracy"]) <= 1
    # The padding of the second sample is masked: its logits equal those of it alone.
    alone = classifier(batch["input_ids"][1:, :1]).logits
    assert torch.allclose(
        classifier(batch["input_ids"], attention_mask=batch["attention_mask"]).logits[1], alone[0], atol=1e-5
    )
    lm = Transformer(head="causal_lm", config={**GPT2, "vocab_size": 10}).build()
    causal = DynamicPadding(causal_lm=True).build()(samples)
    result = CausalLM().val_step(lm, causal, StepInfo.__new__(StepInfo))
    assert result.count == 2  # 2 predicted tokens in sample 0, none in sample 1 (its only token has no successor)
    assert float(result.metrics["perplexity"]) == pytest.approx(float(result.loss.detach().exp()), rel=1e-5)  # type: ignore[union-attr]
