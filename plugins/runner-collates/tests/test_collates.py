"""Collate functions: default, pad (mask, lengths, value, side) and stack_dict."""

from __future__ import annotations

import subprocess
import sys
from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import torch

from runner import DataError
from runner._data.build import make_loader
from runner_collates import plugin
from runner_collates.collates import DefaultCollate, PadCollate, StackDict


def test_entry_module_is_torch_free() -> None:
    code = "import sys, runner_collates.plugin\nassert 'torch' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_conformance(runner_tester: Any) -> None:
    assert runner_tester.check_components(plugin) == []


def test_default_collates_tensors_numbers_dicts_and_tuples() -> None:
    Pair = namedtuple("Pair", "a b")
    batch = DefaultCollate()(
        [
            {"x": torch.ones(2), "n": 1, "f": 0.5, "s": "a", "t": (np.zeros(2), True), "p": Pair(1, 2)},
            {"x": torch.zeros(2), "n": 2, "f": 1.5, "s": "b", "t": (np.ones(2), False), "p": Pair(3, 4)},
        ]
    )
    assert batch["x"].shape == (2, 2) and batch["n"].dtype == torch.long and batch["f"].dtype == torch.float32
    assert batch["s"] == ["a", "b"] and batch["t"][0].shape == (2, 2) and batch["t"][1].tolist() == [True, False]
    assert isinstance(batch["p"], Pair) and batch["p"].b.tolist() == [2, 4]


def test_default_points_to_pad_for_ragged_tensors() -> None:
    with pytest.raises(DataError, match='use collate = \\{ name = "pad" \\}'):
        DefaultCollate()([(torch.ones(2), 0), (torch.ones(3), 1)])


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_tuple_samples(side: str) -> None:
    samples = [(torch.tensor([1, 2, 3]), 0), (torch.tensor([4]), 1)]
    x, y, mask, lengths = PadCollate(pad_value=-1, side=side)(samples)
    if side == "right":
        assert x.tolist() == [[1, 2, 3], [4, -1, -1]] and mask.tolist() == [[True] * 3, [True, False, False]]
    else:
        assert x.tolist() == [[1, 2, 3], [-1, -1, 4]] and mask.tolist() == [[True] * 3, [False, False, True]]
    assert y.tolist() == [0, 1] and lengths.tolist() == [3, 1]


def test_pad_dict_samples_and_options() -> None:
    samples = [{"tokens": [5, 6], "label": 1}, {"tokens": [7], "label": 0}]
    batch = PadCollate(fields=["tokens"], lengths=False)(samples)
    assert batch["tokens"].tolist() == [[5, 6], [7, 0]] and batch["tokens_mask"].tolist() == [[1, 1], [1, 0]]
    assert "tokens_lengths" not in batch and batch["label"].tolist() == [1, 0]
    with pytest.raises(DataError, match="no key 'tokns'"):
        PadCollate(fields=["tokns"])(samples)


def test_pad_multidimensional_sequences_through_a_loader() -> None:
    data = [(torch.ones(n, 2) * n, n) for n in (1, 3, 2)]
    loader = make_loader(data, {"batch_size": 3}, collate=PadCollate())
    x, _, mask, lengths = next(iter(loader))
    assert x.shape == (3, 3, 2) and lengths.tolist() == [1, 3, 2] and mask.sum().item() == 6


def test_stack_dict() -> None:
    batch = StackDict(keys=["a"])([{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}])
    assert list(batch) == ["a"] and batch["a"].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(DataError, match="sample 1 has no key 'a'"):
        StackDict()([{"a": 1}, {"b": 2}])
    with pytest.raises(DataError, match="sample 0 is a tuple"):
        StackDict()([(1, 2)])
