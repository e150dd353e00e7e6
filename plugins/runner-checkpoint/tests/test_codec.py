"""Splitting states into tensors + JSON skeleton and back, exactly, without pickle."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
import torch

from runner_checkpoint import codec


def round_trip(state: Any) -> tuple[Any, Any, dict[str, dict[str, torch.Tensor]]]:
    skeleton, files = codec.encode(state)
    text = json.dumps(skeleton, allow_nan=False)  # the skeleton is strict JSON
    return codec.decode(json.loads(text), files), skeleton, files


def same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_optimizer_state_round_trips_with_int_keys_and_tuples() -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizers": [optimizer.state_dict()]}
    loaded, _, files = round_trip(state)
    assert same(state, loaded)
    assert loaded["optimizers"][0]["param_groups"][0]["betas"] == (0.8, 0.9)
    assert set(loaded["optimizers"][0]["state"]) == {0, 1}
    # model tensors live in a plain weights file under their state-dict names
    assert set(files[codec.MODEL_FILE]) == {"weight", "bias"}
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(loaded["optimizers"][0])


def test_awkward_values_round_trip() -> None:
    state = {
        "nan": math.nan,
        "inf": -math.inf,
        "big": 2**80,
        "nested": [(1, "a", None), {"$t": "not a tag"}, {3: "int key", (1, 2): "tuple key"}],
        "numpy": np.arange(6, dtype=np.int32).reshape(2, 3),
        "np_scalar": np.int64(5),
        "np_float": np.float32(0.25),
        "dtype": torch.bfloat16,
        "device": torch.device("cpu"),
        "size": torch.Size([2, 3]),
        "bytes": b"\x00\xff",
        "empty": {},
    }
    loaded, _, _ = round_trip(state)
    assert same(state, loaded)
    assert isinstance(loaded["np_scalar"], np.int64)
    assert isinstance(loaded["size"], torch.Size)


def test_tied_tensors_are_stored_once_and_views_are_copied() -> None:
    weight = torch.randn(4, 4)
    state = {"model": {"a.weight": weight, "b.weight": weight}, "view": weight[1:3], "other": weight[0]}
    loaded, skeleton, files = round_trip(state)
    assert skeleton["model"]["a.weight"] == skeleton["model"]["b.weight"]
    assert len(files[codec.MODEL_FILE]) == 1
    assert torch.equal(loaded["view"], weight[1:3])
    assert torch.equal(loaded["other"], weight[0])


def test_unsupported_values_name_their_path() -> None:
    with pytest.raises(codec.CodecError) as caught:
        codec.encode({"plugins": {"mine.v2/x": {"fn": [1, lambda: None]}}})
    assert str(caught.value) == (
        "state key 'mine.v2/x' (returned by a plugin's get_state): cannot store a function at ['fn'][1] in a "
        "checkpoint; return dicts, lists, numbers, strings, bools, None, tensors or numpy arrays"
    )
    assert caught.value.path == ("plugins", "mine.v2/x", "fn", 1) and caught.value.type_name == "function"
    with pytest.raises(codec.CodecError, match=r"^state key 'myplugin/x' \(returned by a plugin's get_state\): "):
        codec.encode({"plugins": {"myplugin/x": {3, 4}}})
    with pytest.raises(codec.CodecError, match=r"^state\['x'\]: cannot store a numpy object array .*need pickle"):
        codec.encode({"x": np.array([object()])})
    with pytest.raises(codec.CodecError, match=r"cannot store a frozenset at \[<key>\]"):
        codec.check({frozenset({1}): 2}, ("plugins", "p"))
    codec.check({"ok": [torch.zeros(2), (1, "a")], 3: None}, ("plugins", "p"))


def test_malformed_references_are_refused() -> None:
    with pytest.raises(codec.CodecError, match="missing"):
        codec.decode({"x": {"$t": ["state.safetensors", "nope"]}}, {"state.safetensors": {}})
    with pytest.raises(codec.CodecError, match="malformed"):
        codec.decode({"x": {"$t": 5}}, {})
    with pytest.raises(codec.CodecError, match="not a torch dtype"):
        codec.decode({"x": {"$dtype": "nn"}}, {})


def test_large_files_are_sharded_with_references_rewritten() -> None:
    model = {f"layer{i}.weight": torch.full((256,), float(i)) for i in range(5)}  # 1 KB each
    state = {"model": model, "optimizers": [{"state": {0: {"exp_avg": torch.ones(512)}}}]}
    skeleton, files = codec.encode(state, shard_bytes=2048)
    assert sorted(files) == [
        "model-00001-of-00003.safetensors",
        "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
        "state.safetensors",
    ]
    assert skeleton["model"]["layer4.weight"] == {"$t": ["model-00003-of-00003.safetensors", "layer4.weight"]}
    assert same(codec.decode(skeleton, files), state)
