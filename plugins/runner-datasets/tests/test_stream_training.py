"""Training on a stream of unknown length (a ``generator`` source without ``length``):
the run is counted in steps, the stream restarts when it ends, and a recipe that counts
epochs is refused with one clear error."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch

import runner_datasets.plugin as datasets_plugin
import runner_models.plugin as models_plugin
from runner import RunnerError, hookimpl

THIS = sys.modules[__name__]  # registers the producer the recipe names

RECIPE = """
[run]
name = "stream"
{length_key}
log_every = 5
device = "cpu"
[data.train]
dataset = {{ name = "generator", producer = "points", kwargs = {{ n = 100 }}, split = "train" }}
loader = {{ batch_size = 16 }}
[data.val.main]
dataset = {{ name = "generator", producer = "points", kwargs = {{ n = 64 }}, split = "val" }}
loader = {{ batch_size = 32 }}
[model]
name = "mlp"
hidden = [8]
in_features = 4
num_classes = 2
[task]
name = "classification"
[optimizer]
name = "sgd"
lr = 0.5
"""


def points(n: int, split: str | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` labelled points, the same every pass (100 train samples: 7 batches of 16)."""
    generator = torch.Generator().manual_seed(0 if split == "train" else 1)
    for _ in range(n):
        x = torch.randn(4, generator=generator)
        yield x, torch.tensor(int(x[0] > 0))


@hookimpl
def register_functions(register: Any) -> None:
    register("points", points)


def test_a_stream_without_length_trains_for_max_steps_across_passes(runner_tester: Any) -> None:
    outcome = runner_tester.run(RECIPE.format(length_key=""), datasets_plugin, models_plugin, THIS, max_steps=20)
    train = [r for r in outcome.records if r["stage"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    # 7 batches per pass: steps 1-7 are the first pass, 8-14 the second, 15-20 the third.
    assert [r["epoch"] for r in train] == [0, 1, 2, 2]
    val = [r for r in outcome.records if r["stage"] == "val"]
    assert val and val[-1]["accuracy"] > 0.8, val


def test_counting_epochs_of_a_stream_without_length_is_refused(runner_tester: Any) -> None:
    with pytest.raises(RunnerError, match=r"the train data has no known length .* set run\.max_steps"):
        runner_tester.run(RECIPE.format(length_key="epochs = 2"), datasets_plugin, models_plugin, THIS, max_steps=None)
