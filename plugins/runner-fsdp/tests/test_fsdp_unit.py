"""The fsdp backend without launching: declaration, unit selection, and sharding a model
in this process (a process group of one)."""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.distributed as dist

from runner import PluginInfo, RunnerError, Stage
from runner._plugins.registry import resolve_reference
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_ddp.backend import DDP
from runner_ddp.params import LaunchParams
from runner_fsdp import plugin
from runner_fsdp.params import FSDPParams
from runner_fsdp.sharding import shard, units


def test_entry_module_and_params_import_without_torch() -> None:
    assert_entry_module_torch_free(
        "runner_fsdp.plugin", also=("runner_ddp.backend", "runner_fsdp.backend"), imports=("runner_fsdp.params",)
    )


def test_entry_point_and_lazy_registration() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("fsdp") == "runner_fsdp.plugin"
    found: dict[str, Any] = {}
    plugin.register_backends(register=lambda name, factory, **kw: found.setdefault(name, factory))
    assert found == {"fsdp": "runner_fsdp.params:FSDPParams"}
    assert resolve_reference(found["fsdp"]) is FSDPParams


def test_the_backend_is_ddps_with_the_launch_keys() -> None:
    backend = FSDPParams(nproc_per_node=3).build()
    assert isinstance(backend, DDP) and type(backend).__name__ == "FSDP"
    assert issubclass(FSDPParams, LaunchParams)
    launch = {a.name for a in LaunchParams.__attrs_attrs__}  # type: ignore[attr-defined]
    assert launch <= set(schema_from_attrs(FSDPParams).fields)
    assert not {"find_unused_parameters", "bucket_cap_mb"} & set(schema_from_attrs(FSDPParams).fields)


def test_a_run_without_runner_ddps_plugin_is_refused() -> None:
    """runner-ddp's plugin keeps the sample position in checkpoints: without it a resume
    would repeat or skip samples, so the run stops at its start, saying so."""
    backend = FSDPParams().build()
    run: Any = SimpleNamespace(plugins=(PluginInfo("fsdp", "runner-fsdp", "0.1.0"),))
    with pytest.raises(RunnerError, match="the fsdp backend needs the runner-ddp plugin enabled"):
        backend.setup(run, Stage.TRAIN)
    run.plugins += (PluginInfo("ddp", "runner-ddp", "0.1.0"),)
    backend.setup(run, Stage.TRAIN)  # one process in the launcher's view: nothing else to do


def test_params_schema_accepts_and_rejects() -> None:
    fields = schema_from_attrs(FSDPParams).fields
    good = {"wrap": ["Block"], "param_dtype": "bfloat16", "reduce_dtype": "float32", "min_params": 1000}
    converted, issues = check_table(good, fields)
    assert not issues and converted["param_dtype"] == "bfloat16"
    bad = {"wrap": "Block", "param_dtype": "fp8", "min_params": -1, "cpu_offload": "yes"}
    _, issues = check_table(bad, fields)
    assert {path[0] for path, _ in issues} == set(bad)


def test_activation_checkpointing_needs_units() -> None:
    component_rule = FSDPParams(activation_checkpointing=True)._units_to_recompute()
    assert component_rule is not None and "wrap" in component_rule
    assert FSDPParams(activation_checkpointing=True, wrap=["Block"])._units_to_recompute() is None


class Block(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(x))


def model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), Block(16), Block(16), torch.nn.Linear(16, 3))


def test_units_by_class_name_and_by_size() -> None:
    assert [name for name, _ in units(model(), ["Block"], 0)] == ["1", "2"]
    assert [name for name, _ in units(model(), ["Linear"], 0)] == ["0", "1.linear", "2.linear", "3"]
    # 272 parameters per Block (its Linear); the first Linear has 144, the last 51.
    assert [name for name, _ in units(model(), [], 200)] == ["1.linear", "2.linear"]
    assert [name for name, _ in units(model(), ["Block"], 100)] == ["0", "1.linear", "2.linear"]  # innermost first


def test_an_unknown_class_name_is_one_clear_error() -> None:
    with pytest.raises(RunnerError) as caught:
        units(model(), ["Blok"], 0)
    message = str(caught.value)
    assert "[backend] wrap = ['Blok']: no submodule of the model is a 'Blok'" in message
    assert "did you mean 'Block'?" in message and "its classes are Block, Linear, Sequential" in message


@pytest.fixture
def group_of_one() -> Iterator[None]:
    """A gloo process group of this process alone (destroyed after the test)."""
    store = dist.HashStore()  # type: ignore[attr-defined]
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def train(module: torch.nn.Module, steps: int = 3) -> list[float]:
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        x, y = torch.randn(6, 8, generator=generator), torch.randint(0, 3, (6,), generator=generator)
        loss = torch.nn.functional.cross_entropy(module(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


@pytest.mark.usefixtures("group_of_one")
def test_sharded_parameters_train_like_the_plain_model() -> None:
    from torch.distributed.tensor import DTensor

    plain = train(model())
    sharded = shard(model(), FSDPParams(wrap=["Block"]), torch.device("cpu"), 1)
    assert all(isinstance(p, DTensor) for p in sharded.parameters())
    assert list(sharded.state_dict()) == list(model().state_dict())  # the same names
    assert train(sharded) == pytest.approx(plain, rel=1e-6)


@pytest.mark.usefixtures("group_of_one")
def test_mixed_precision_offload_and_activation_checkpointing_train() -> None:
    plain = train(model())
    params = FSDPParams(
        wrap=["Block"], param_dtype="bfloat16", reduce_dtype="float32", cpu_offload=True, activation_checkpointing=True
    )
    sharded = shard(model(), params, torch.device("cpu"), 1)
    assert all(p.dtype == torch.float32 for p in sharded.parameters())  # bf16 only while gathered
    losses = train(sharded)
    assert losses == pytest.approx(plain, rel=0.05)  # bfloat16 compute
    assert losses != pytest.approx(plain, rel=1e-6)
