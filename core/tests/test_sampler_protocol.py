"""The sampler protocol has one owner (runner._samplers.protocol): the loader, recipe
validation and the built-in components ask it the same questions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner._contract.context import BuildContext
from runner._contract.errors import RunnerError
from runner._contract.recipe import ComponentConfig, LoaderConfig, SplitConfig
from runner._contract.registration import PluginInfo
from runner._data.build import build_loader
from runner._plugins.manager import PluginManager
from runner._samplers.protocol import declared_resumable, is_batch_sampler, is_resumable, non_resumable_message
from runner.hookspecs import hookimpl


@pytest.mark.slow  # starts processes
def test_the_built_in_samplers_are_resumable_before_anything_is_built() -> None:
    code = (
        "import sys\n"
        "from runner._plugins.manager import PluginManager\n"
        "from runner._samplers.protocol import declared_resumable\n"
        "registry = PluginManager(use_entry_points=False).load().registry\n"
        "print([declared_resumable(registry.get('sampler', n)) for n in ('random', 'sequential')])\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[True,", "True]", "False"]


def test_is_batch_sampler_knows_torch_batch_samplers_and_the_marker() -> None:
    import torch

    class Marked:
        is_batch_sampler = True

    batches = torch.utils.data.BatchSampler(range(4), batch_size=2, drop_last=False)
    assert is_batch_sampler(batches) and is_batch_sampler(Marked())
    assert not is_batch_sampler(range(4)) and not is_batch_sampler(torch.utils.data.SequentialSampler(range(4)))


class Forgetful:
    """A sampler without state_dict/load_state_dict, built by a plain function (unknown
    until built, so the loader checks it)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Any:
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def forgetful(dataset: Any) -> Forgetful:
    return Forgetful(len(dataset))


def test_validation_and_the_loader_report_a_non_resumable_sampler_alike(tmp_path: Path) -> None:
    class Plugin:
        @hookimpl
        def register_samplers(self, register: Any) -> None:
            register("forgetful", forgetful)

    manager = PluginManager(use_entry_points=False).load()
    manager.add(Plugin(), PluginInfo("forgetful", "tests", "test"))
    component = manager.registry.get("sampler", "forgetful")
    assert declared_resumable(component) is None and not is_resumable(Forgetful(1))

    split = SplitConfig(
        key="train",
        dataset=ComponentConfig("dataset", "toy", {}, "data.train.dataset"),
        loader=LoaderConfig(),
        sampler=ComponentConfig("sampler", "forgetful", {}, "data.train.sampler"),
    )
    recipe = type("R", (), {"checkpoint": object()})()
    ctx = BuildContext(recipe=recipe, seed=0, run_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(RunnerError) as caught:
        build_loader(split, list(range(8)), manager.registry, ctx, train=True, on_cuda=False)
    assert str(caught.value) == f"data.train.sampler: {non_resumable_message('forgetful', component.plugin)}"
    assert "runner.IndexSampler" in str(caught.value) and "runner._" not in str(caught.value)
