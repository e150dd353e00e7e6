"""Bundled parts compose on variable-length data: sequences + bucket_by_length + pad + rnn + classification.

In 0.1 the ``pad`` collate crashed on 0-d tensor targets (``len() of a 0-d tensor``) and,
with int targets, returned ``(inputs, targets, mask, lengths)``, which ``classification``
rejected; the runner-samplers README advised using them together anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from runner import DataError

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "sequence.toml"
PLUGINS = ("runner_datasets.plugin", "runner_samplers.plugin", "runner_collates.plugin", "runner_models.plugin")

VARIABLE_LENGTH = """
[run]
name = "variable-length"
log_every = 1
[data.train]
dataset = { name = "sequences", split = "train", num_samples = 64, max_len = 12 }
loader = { batch_size = 8, shuffle = true }
sampler = { name = "bucket_by_length" }
collate = { name = "pad" }
[data.val.main]
dataset = { name = "sequences", split = "val", num_samples = 16, max_len = 12 }
loader = { batch_size = 16 }
collate = { name = "pad" }
[model]
name = "rnn"
hidden_size = 8
embed_dim = 4
[task]
name = "classification"
[optimizer]
name = "adamw"
"""


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Training speed on a shared 2-core machine: one intra-op thread, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_pad_feeds_classification_through_the_engine(runner_tester: Any, one_thread: None) -> None:
    """The 0.1 failure (the recipe above crashed in the collate, then in the task) as a regression test."""
    outcome = runner_tester.run(VARIABLE_LENGTH, *PLUGINS, max_steps=3)
    train = [r for r in outcome.records if r["stage"] == "train"]
    val = [r for r in outcome.records if r["stage"] == "val"]
    assert outcome.result.global_step == 3 and train and "accuracy" in val[-1]


def test_positional_pad_output_gives_one_clear_error(runner_tester: Any, one_thread: None) -> None:
    recipe = VARIABLE_LENGTH.replace('collate = { name = "pad" }', 'collate = { name = "pad", output = "tuple" }')
    with pytest.raises(DataError) as caught:
        runner_tester.run(recipe, *PLUGINS, max_steps=1)
    message = str(caught.value)
    assert "\n" not in message and "found a tuple of 4 items" in message and "docs/data.md" in message


@pytest.mark.slow
def test_sequence_recipe_reaches_95_percent_validation_accuracy(runner_tester: Any, one_thread: None) -> None:
    started = time.perf_counter()
    outcome = runner_tester.run(RECIPE, *PLUGINS, max_steps=None)
    elapsed = time.perf_counter() - started
    val = [r for r in outcome.records if r["stage"] == "val"]
    assert [r["epoch"] for r in val] == [0, 1]
    assert val[-1]["accuracy"] >= 0.95, val  # the recipe's comment says about 99%
    assert outcome.result.metrics["test/main"]["accuracy"] >= 0.95
    assert elapsed < 60
