"""How a failing export is described: the module whose ``forward`` was running (path,
class, source line) and the operator the exporter named, in one line (no exporter run)."""

from __future__ import annotations

import pytest
import torch

from runner._inference.export import describe_failure, flat_outputs


class Odd(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("Could not guard on data-dependent expression\nmore detail")


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(2, 2), Odd())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_the_innermost_module_of_the_model_is_named_with_its_source_line() -> None:
    net = Net()
    with pytest.raises(RuntimeError) as caught:
        net(torch.zeros(1, 2))
    line = describe_failure(caught.value, net, "torch-export")
    assert line.startswith(f"export to torch-export failed in module 'body.1' (Odd, {__file__}:14): ")
    assert line.endswith("RuntimeError: Could not guard on data-dependent expression")


def test_an_operator_in_the_message_is_named() -> None:
    try:
        raise ValueError("No ONNX function found for <OpOverload(op='aten.cummax', overload='default')>")
    except ValueError as exc:
        line = describe_failure(exc, Net(), "onnx")
    assert line.startswith("export to onnx failed at operator aten.cummax: ValueError: No ONNX function found")


def test_outputs_are_flattened_in_order() -> None:
    a, b, c = torch.zeros(1), torch.ones(1), torch.full((1,), 2.0)
    assert flat_outputs({"x": a, "y": (b, [c])}) == [a, b, c]
