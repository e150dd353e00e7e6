"""The batch convention: ``runner.batch_fields`` and ``runner.forward_kwargs``."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
from torch import nn

import runner
from runner import DataError, batch_fields, forward_kwargs


@pytest.mark.slow  # starts processes
def test_the_convention_is_public_and_torch_free() -> None:
    code = (
        "import sys, runner\n"
        "from runner import Batch, batch_fields, forward_kwargs\n"
        "assert batch_fields({'inputs': 1, 'targets': 2}) == (1, 2, {})\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert {"Batch", "batch_fields", "forward_kwargs"} <= set(runner.__all__)


@pytest.mark.parametrize("pair", [(1, 2), [1, 2]])
def test_positional_pairs_have_no_extras(pair: Any) -> None:
    assert batch_fields(pair) == (1, 2, {})


def test_named_fields_and_their_hugging_face_aliases() -> None:
    batch = {"inputs": "x", "targets": "y", "lengths": "n", "attention_mask": "m"}
    assert batch_fields(batch) == ("x", "y", {"lengths": "n", "attention_mask": "m"})
    assert batch_fields({"input_ids": "x", "labels": "y", "token_type_ids": "t"}) == ("x", "y", {"token_type_ids": "t"})
    # The canonical name wins; the alias stays an extra for a model that asks for it.
    assert batch_fields({"input_ids": "i", "inputs": "x", "targets": "y"}) == ("x", "y", {"input_ids": "i"})


@pytest.mark.parametrize(
    ("batch", "found"),
    [
        ((1, 2, 3, 4), "found a tuple of 4 items;"),
        ([1], "found a list of 1 item;"),
        ({"x": 1, "label": 2}, "found a dict with keys 'x', 'label';"),
        ({"inputs": 1}, "found a dict with keys 'inputs';"),
        ({}, "found an empty dict;"),
        (torch.zeros(2, 3), "found a Tensor of shape (2, 3);"),
    ],
)
def test_anything_else_is_one_clear_data_error(batch: Any, found: str) -> None:
    with pytest.raises(DataError) as caught:
        batch_fields(batch)
    message = str(caught.value)
    assert "\n" not in message and found in message
    assert message.startswith("batch: expected (inputs, targets) or named fields with 'inputs' (or 'input_ids')")


class Plain(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Sequence(nn.Module):
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, *, attention_mask: Any = None) -> Any:
        return x


class Kwargs(nn.Module):
    def forward(self, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return x


class Wrapper(nn.Module):
    """Forwards everything, like DistributedDataParallel."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)


def test_forward_kwargs_passes_only_the_fields_forward_declares() -> None:
    extras = {"lengths": 1, "attention_mask": 2, "token_type_ids": 3}
    assert forward_kwargs(Plain(), extras) == {}
    assert forward_kwargs(Sequence(), extras) == {"lengths": 1, "attention_mask": 2}
    assert forward_kwargs(Kwargs(), extras) == {}  # **kwargs is not a declaration
    assert forward_kwargs(Sequence(), {}) == {}


def test_forward_kwargs_looks_through_wrappers() -> None:
    extras = {"lengths": 1}
    assert forward_kwargs(Wrapper(Sequence()), extras) == {"lengths": 1}
    assert forward_kwargs(Wrapper(Wrapper(Plain())), extras) == {}
    assert forward_kwargs(nn.DataParallel(Sequence()), extras) == {"lengths": 1}
    assert forward_kwargs(Compiled(Sequence()), extras) == {"lengths": 1}


class Compiled(nn.Module):
    """Shaped like torch.compile's OptimizedModule (compiling here would warn and take seconds)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._orig_mod = module

    def forward(self, *args: Any) -> Any:
        return self._orig_mod(*args)
