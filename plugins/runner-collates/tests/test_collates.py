"""Collate functions: default, pad (mask, lengths, value, side) and stack_dict."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import torch

from runner import DataError, batch_fields
from runner._data.build import make_loader
from runner.testing import assert_entry_module_torch_free
from runner_collates import plugin
from runner_collates.collates import DefaultCollate, PadCollate, StackDict


@pytest.mark.slow  # starts processes
def test_entry_module_is_torch_free() -> None:
    assert_entry_module_torch_free("runner_collates.plugin")


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
def test_pad_gives_named_fields(side: str) -> None:
    samples = [(torch.tensor([1, 2, 3]), 0), (torch.tensor([4]), 1)]
    batch = PadCollate(pad_value=-1, side=side)(samples)
    assert list(batch) == ["inputs", "targets", "attention_mask", "lengths"]
    if side == "right":
        assert batch["inputs"].tolist() == [[1, 2, 3], [4, -1, -1]]
        assert batch["attention_mask"].tolist() == [[True] * 3, [True, False, False]]
    else:
        assert batch["inputs"].tolist() == [[1, 2, 3], [-1, -1, 4]]
        assert batch["attention_mask"].tolist() == [[True] * 3, [False, False, True]]
    assert batch["targets"].tolist() == [0, 1] and batch["lengths"].tolist() == [3, 1]
    assert batch["lengths"].dtype == torch.long and batch["attention_mask"].dtype == torch.bool
    assert batch_fields(batch)[:2] == (batch["inputs"], batch["targets"])


def test_pad_stacks_0d_tensor_targets() -> None:
    """The 0.1 crash: 0-d targets (what TensorDataset-style samples give) were taken for sequences."""
    samples = [(torch.tensor([1, 2, 3]), torch.tensor(0)), (torch.tensor([4]), torch.tensor(1))]
    batch = PadCollate()(samples)
    assert batch["targets"].tolist() == [0, 1] and batch["targets"].shape == (2,)
    x, y, _, _ = PadCollate(output="tuple")(samples)
    assert x.shape == (2, 3) and y.tolist() == [0, 1]
    numpy_targets = PadCollate()([(np.arange(2), np.int64(1)), (np.arange(3), np.array(0))])
    assert numpy_targets["targets"].tolist() == [1, 0]


def test_every_batch_has_the_same_fields() -> None:
    """The sequence field is padded (lengths and mask added) even when its lengths agree."""
    batch = PadCollate()([(torch.tensor([1, 2]), 0), (torch.tensor([3, 4]), 1)])
    assert list(batch) == ["inputs", "targets", "attention_mask", "lengths"]
    assert batch["lengths"].tolist() == [2, 2] and bool(batch["attention_mask"].all())


def test_pad_named_options() -> None:
    samples = [(torch.tensor([1, 2]), 0), (torch.tensor([3]), 1)]
    assert list(PadCollate(mask=False, lengths=False)(samples)) == ["inputs", "targets"]
    only = PadCollate(fields=["0"])(samples)
    assert only["inputs"].tolist() == [[1, 2], [3, 0]] and only["lengths"].tolist() == [2, 1]
    bare = PadCollate()([torch.tensor([1.0]), torch.tensor([2.0, 3.0])])
    assert list(bare) == ["inputs", "attention_mask", "lengths"]
    with pytest.raises(DataError, match=r'sample 0 has 3 fields; .* set output = "tuple"'):
        PadCollate()([(torch.tensor([1]), 0, 1)])
    with pytest.raises(DataError, match="no field 'tokens'"):
        PadCollate(fields=["tokens"])(samples)


def test_pad_dict_samples_follow_hugging_face_names() -> None:
    samples = [
        {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": 1, "id": "a"},
        {"input_ids": [8], "attention_mask": [1], "labels": 0, "id": "b"},
    ]
    batch = PadCollate(pad_value=9)(samples)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]  # the samples' own mask, padded with 0
    assert batch["labels"].tolist() == [1, 0] and batch["id"] == ["a", "b"] and batch["lengths"].tolist() == [3, 1]
    inputs, targets, extras = batch_fields(batch)
    assert (
        inputs is batch["input_ids"]
        and targets is batch["labels"]
        and set(extras) == {"attention_mask", "id", "lengths"}
    )
    with pytest.raises(DataError, match="sample 1 has no field 'labels'"):
        PadCollate()([{"input_ids": [1], "labels": 0}, {"input_ids": [1, 2]}])


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_tuple_output_keeps_the_0_1_layout(side: str) -> None:
    samples = [(torch.tensor([1, 2, 3]), 0), (torch.tensor([4]), 1)]
    x, y, mask, lengths = PadCollate(pad_value=-1, side=side, output="tuple")(samples)
    if side == "right":
        assert x.tolist() == [[1, 2, 3], [4, -1, -1]] and mask.tolist() == [[True] * 3, [True, False, False]]
    else:
        assert x.tolist() == [[1, 2, 3], [-1, -1, 4]] and mask.tolist() == [[True] * 3, [False, False, True]]
    assert y.tolist() == [0, 1] and lengths.tolist() == [3, 1]


def test_pad_tuple_output_dict_samples_and_options() -> None:
    samples = [{"tokens": [5, 6], "label": 1}, {"tokens": [7], "label": 0}]
    batch = PadCollate(fields=["tokens"], lengths=False, output="tuple")(samples)
    assert batch["tokens"].tolist() == [[5, 6], [7, 0]] and batch["tokens_mask"].tolist() == [[1, 1], [1, 0]]
    assert "tokens_lengths" not in batch and batch["label"].tolist() == [1, 0]
    with pytest.raises(DataError, match="no key 'tokns'"):
        PadCollate(fields=["tokns"], output="tuple")(samples)


def test_pad_multidimensional_sequences_through_a_loader() -> None:
    data = [(torch.ones(n, 2) * n, n) for n in (1, 3, 2)]
    loader = make_loader(data, {"batch_size": 3}, collate=PadCollate())
    batch = next(iter(loader))
    assert batch["inputs"].shape == (3, 3, 2) and batch["lengths"].tolist() == [1, 3, 2]
    assert batch["attention_mask"].sum().item() == 6


def test_stack_dict() -> None:
    batch = StackDict(keys=["a"])([{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}])
    assert list(batch) == ["a"] and batch["a"].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(DataError, match="sample 1 has no key 'a'"):
        StackDict()([{"a": 1}, {"b": 2}])
    with pytest.raises(DataError, match="sample 0 is a tuple"):
        StackDict()([(1, 2)])
