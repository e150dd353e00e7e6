"""[[process]] steps (runner._processing): multi-process equals single-process, the cache
skips unchanged work, a changed input re-processes only its shard, ranks share the work,
analyze output is stored, and the CLI reports bad input with exit status 2.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from core_helpers import write

from runner._contract.context import BuildContext
from runner._contract.errors import DataError, PluginError, RecipeError
from runner._contract.stage import Stage
from runner._data.module import DataModule, build_datamodule
from runner._plugins.manager import PluginManager
from runner._processing import DistArgs, load_output, run_steps
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate

PLUGIN = '''
"""Test plugin: a processor that counts its calls in a file, a datamodule, samplers."""
import os
from pathlib import Path

import attrs

from runner import hookimpl, param


@attrs.define
class SquaresParams:
    scale: float = param(1.0)
    counter: str = param("")


class Squares:
    def __init__(self, scale=1.0, counter=""):
        self.scale, self.counter = scale, counter

    def process(self, inputs):
        import torch
        if self.counter:
            with open(self.counter, "a") as handle:
                handle.write(f"{os.getpid()} {len(inputs)}\\n")
        values = [float(v) for path in inputs for v in Path(path).read_text().split()]
        x = torch.tensor(values) * self.scale
        return {"x": x, "y": x * x}

    def analyze(self, data):
        return {"rows": int(len(data["x"])), "mean": float(data["x"].mean())}


class Forgetful:
    """A sampler without state_dict/load_state_dict."""
    def __init__(self, dataset, seed):
        self.n = len(dataset)
    def __iter__(self):
        return iter(range(self.n))
    def __len__(self):
        return self.n


class NoCheckpoint:
    def __init__(self, run_dir):
        pass
    def restore(self, run, source):
        return False


class Module:
    def __init__(self, ctx=None, n=20):
        self.calls = []
        self.n = n
    def prepare_data(self):
        marker = os.environ.get("PREPARE_MARKER")
        if marker:
            with open(marker, "a") as handle:
                handle.write("prepared\\n")
    def bind(self, ctx, registry, on_cuda=False):
        self.ctx = ctx
    def setup(self, stage):
        self.calls.append(str(stage))
    def train_dataloader(self):
        return None


@hookimpl
def register_processors(register):
    register("squares", Squares, params=SquaresParams)
    register("frozen", Frozen)


@hookimpl
def register_samplers(register):
    register("forgetful", Forgetful)


@hookimpl
def register_checkpointers(register):
    register("nockpt", NoCheckpoint)


@hookimpl
def register_datamodules(register):
    register("module", Module)


@attrs.define
class RecordingParams:
    log: str = param(doc="file that records the shards run")


class Recording:
    """An executor that runs shards in-process and notes each one."""
    def __init__(self, log):
        self.log = log
    def run(self, processor, shards, cache, workers):
        from runner._processing.shards import process_shard
        for shard in shards:
            with open(self.log, "a") as handle:
                handle.write(f"{shard.index} {workers}\\n")
            cache.write_shard(shard.key, process_shard(processor, shard))


@hookimpl
def register_executors(register):
    register("recording", Recording, params=RecordingParams)


class Frozen:
    """Returns read-only numpy arrays, as Ray hands them back from a task."""
    def process(self, inputs):
        import numpy as np
        x = np.arange(4, dtype=np.float32)
        x.flags.writeable = False
        return {"x": x}

'''

RECIPE = """
plugins = ["{plugin}"]
[run]
epochs = 1
[data.train]
dataset = {{ name = "toy" }}
[model]
name = "lin"
[task]
name = "cls"
[optimizer]
name = "sgd"
[[process]]
name = "squares"
inputs = {inputs}
process_count = {count}
cache_dir = "{cache}"
counter = "{counter}"
analyze = true
"""


@pytest.fixture
def manager(tmp_path: Path, toy_manager: PluginManager) -> PluginManager:
    plugin = write(tmp_path / "proc_plugin.py", PLUGIN)
    toy_manager.load_local(str(plugin))
    return toy_manager


def inputs(tmp_path: Path, count: int = 6) -> list[str]:
    files = []
    for i in range(count):
        path = tmp_path / "in" / f"part{i}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(" ".join(str(i * 10 + j) for j in range(i + 1)))
        files.append(str(path))
    return files


def recipe(manager: PluginManager, tmp_path: Path, files: list[str], count: int, cache: str, name: str = "r.toml"):
    text = RECIPE.format(
        plugin=tmp_path / "proc_plugin.py",
        inputs=json.dumps(files),
        count=count,
        cache=tmp_path / cache,
        counter=tmp_path / f"{cache}.calls",
    )
    path = write(tmp_path / name, text)
    return validate(read_recipe(path), manager.registry, manager.failures)


def calls(tmp_path: Path, cache: str) -> list[str]:
    path = tmp_path / f"{cache}.calls"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow  # starts processes
def test_multi_process_equals_single_process(manager: PluginManager, tmp_path: Path) -> None:
    files = inputs(tmp_path)
    single = run_steps(recipe(manager, tmp_path, files, 1, "c1"), manager, report=None)[0]
    multi = run_steps(recipe(manager, tmp_path, files, 3, "c3"), manager, report=None)[0]
    assert single.processed == multi.processed == 6
    one, three = load_output("squares", tmp_path / "c1"), load_output("squares", tmp_path / "c3")
    assert torch.equal(one["x"], three["x"]) and torch.equal(one["y"], three["y"])
    assert one["x"].tolist()[:3] == [0.0, 10.0, 11.0]  # input order is kept
    # The work ran in worker processes (the pool may hand two of the three chunks to one worker).
    workers = {line.split()[0] for line in calls(tmp_path, "c3")}
    assert workers and str(os.getpid()) not in workers and len(workers) <= 3


@pytest.mark.slow  # starts processes
def test_rerun_hits_the_cache_and_a_changed_input_reprocesses_only_its_shard(
    manager: PluginManager, tmp_path: Path
) -> None:
    files = inputs(tmp_path)
    validated = recipe(manager, tmp_path, files, 2, "c")
    first = run_steps(validated, manager, report=None)[0]
    assert first.processed == 6 and len(calls(tmp_path, "c")) == 6
    messages: list[str] = []
    again = run_steps(validated, manager, report=messages.append)[0]
    assert again.processed == 0 and again.cached == 6
    assert len(calls(tmp_path, "c")) == 6  # no processor call at all
    assert "nothing to do" in messages[0]
    Path(files[2]).write_text("1000 2000 3000")
    changed = run_steps(validated, manager, report=None)[0]
    assert (changed.processed, changed.cached) == (1, 5)
    assert len(calls(tmp_path, "c")) == 7
    assert 2000.0 in load_output("squares", tmp_path / "c")["x"].tolist()


def test_parameters_are_part_of_the_cache_key(manager: PluginManager, tmp_path: Path) -> None:
    files = inputs(tmp_path, 2)
    validated = recipe(manager, tmp_path, files, 1, "c")
    run_steps(validated, manager, report=None)
    scaled = validate(read_recipe(tmp_path / "r.toml", ("process.0.scale=2.0",)), manager.registry, manager.failures)
    assert run_steps(scaled, manager, report=None)[0].processed == 2


def test_ranks_process_their_share_and_the_primary_merges(manager: PluginManager, tmp_path: Path) -> None:
    files = inputs(tmp_path, 5)
    validated = recipe(manager, tmp_path, files, 1, "c")
    with ThreadPoolExecutor(1) as pool:  # two ranks at once: rank 1 waits for the primary's marker
        started = pool.submit(run_steps, validated, manager, dist=DistArgs(rank=0, world_size=2), report=None)
        other = run_steps(validated, manager, dist=DistArgs(rank=1, world_size=2), report=None)[0]
        primary = started.result()[0]
    assert other.processed == 2 and other.skipped_other_ranks == 3 and other.analysis is None
    assert primary.processed == 3 and primary.analysis is not None  # only the primary merges
    run_steps(recipe(manager, tmp_path, files, 1, "ref"), manager, report=None)
    assert torch.equal(load_output("squares", tmp_path / "c")["x"], load_output("squares", tmp_path / "ref")["x"])


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("executor", ["thread", "inline"])
def test_every_builtin_executor_writes_the_same_bytes(manager: PluginManager, tmp_path: Path, executor: str) -> None:
    files = inputs(tmp_path)
    run_steps(recipe(manager, tmp_path, files, 3, "ref"), manager, report=None)
    other_cache = tmp_path / "other"
    other = validate(
        read_recipe(tmp_path / "r.toml", (f"process.0.executor={executor}", f"process.0.cache_dir='{other_cache}'")),
        manager.registry,
        manager.failures,
    )
    assert run_steps(other, manager, report=None)[0].processed == 6
    ref_shards = sorted((tmp_path / "ref" / "shards").iterdir())
    assert [p.read_bytes() for p in ref_shards] == [(other_cache / "shards" / p.name).read_bytes() for p in ref_shards]


@pytest.mark.slow  # starts processes
def test_a_plugin_executor_runs_the_shards_and_shares_the_cache(manager: PluginManager, tmp_path: Path) -> None:
    files = inputs(tmp_path, 4)
    log = tmp_path / "executor.log"
    validated = recipe(manager, tmp_path, files[:2], 2, "c")
    assert run_steps(validated, manager, report=None)[0].processed == 2  # the default executor
    text = (
        (tmp_path / "r.toml")
        .read_text()
        .replace("process_count = 2", f'process_count = 2\nexecutor = {{ name = "recording", log = "{log}" }}')
    )
    text = text.replace(json.dumps(files[:2]), json.dumps(files))
    custom = validate(read_recipe(write(tmp_path / "x.toml", text)), manager.registry, manager.failures)
    assert custom.process[0].framework["executor"] == {"name": "recording", "log": str(log)}
    result = run_steps(custom, manager, report=None)[0]
    # Shards the process executor made are reused: the key does not depend on the executor.
    assert (result.processed, result.cached) == (2, 2)
    assert log.read_text().splitlines() == ["2 2", "3 2"]
    run_steps(recipe(manager, tmp_path, files, 1, "ref"), manager, report=None)
    assert torch.equal(load_output("squares", tmp_path / "c")["y"], load_output("squares", tmp_path / "ref")["y"])


def test_executor_names_and_parameters_are_validated(manager: PluginManager, tmp_path: Path) -> None:
    validated_path = tmp_path / "r.toml"
    recipe(manager, tmp_path, [], 1, "c")
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(validated_path, ("process.0.executor=threads",)), manager.registry, manager.failures)
    assert "process[0].executor" in str(caught.value) and "did you mean 'thread'" in str(caught.value)
    with pytest.raises(RecipeError) as caught:
        validate(
            read_recipe(validated_path, ('process.0.executor={ name = "recording", lgo = "x" }',)),
            manager.registry,
            manager.failures,
        )
    text = str(caught.value)
    assert "process[0].executor.lgo" in text and "did you mean 'log'" in text
    assert "process[0].executor: missing required key 'log'" in text or "process[0].executor.log" in text


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("count", [1, 2])
def test_a_processor_error_names_the_processor_whichever_executor_ran_it(
    manager: PluginManager, tmp_path: Path, count: int
) -> None:
    files = inputs(tmp_path, 3)
    Path(files[1]).write_text("10 eleven 12")
    with pytest.raises(PluginError) as caught:
        run_steps(recipe(manager, tmp_path, files, count, "c"), manager, report=None)
    message = str(caught.value)
    assert message.startswith("process[0]: processor 'squares' (")
    assert "proc_plugin.py local) raised ValueError" in message
    assert "'eleven'" in message and isinstance(caught.value.__cause__, ValueError)


def test_read_only_arrays_are_cached_without_a_warning(manager: PluginManager, tmp_path: Path) -> None:
    recipe(manager, tmp_path, [], 1, "c")
    body = (tmp_path / "r.toml").read_text()
    step = body[body.index("[[process]]") :]
    frozen = body.replace(step, f'[[process]]\nname = "frozen"\ncache_dir = "{tmp_path / "c"}"\n')
    validated = validate(read_recipe(write(tmp_path / "f.toml", frozen)), manager.registry, manager.failures)
    run_steps(validated, manager, report=None)  # filterwarnings = error: a UserWarning would fail here
    assert load_output("frozen", tmp_path / "c")["x"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_dist_args_from_env_follow_node_and_local_rank() -> None:
    dist = DistArgs.from_env({"NODE_RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "NNODES": "2"})
    assert (dist.rank, dist.world_size, dist.is_primary) == (3, 4, False)
    assert DistArgs.from_env({}) == DistArgs()


def test_analysis_is_stored_with_the_cache(manager: PluginManager, tmp_path: Path) -> None:
    files = inputs(tmp_path, 3)
    result = run_steps(recipe(manager, tmp_path, files, 1, "c"), manager, report=None)[0]
    assert result.analysis == {"rows": 6, "mean": pytest.approx(result.analysis["mean"])}
    manifest = json.loads((tmp_path / "c" / "outputs" / "squares.json").read_text())
    assert manifest["analysis"]["rows"] == 6


def test_missing_input_is_a_recipe_problem_at_its_key(manager: PluginManager, tmp_path: Path) -> None:
    """recipe check finds it (before: a DataError once processing started)."""
    with pytest.raises(RecipeError, match=r":14:11: process\[0\]\.inputs\[0\]: no file matches '.*nope\.txt'"):
        recipe(manager, tmp_path, [str(tmp_path / "nope.txt")], 1, "c")


def test_an_input_that_disappears_before_processing_is_a_data_error(manager: PluginManager, tmp_path: Path) -> None:
    (tmp_path / "gone.txt").write_text("1\n", encoding="utf-8")
    validated = recipe(manager, tmp_path, [str(tmp_path / "gone.txt")], 1, "c")
    (tmp_path / "gone.txt").unlink()
    with pytest.raises(DataError, match=r"gone\.txt' does not exist"):
        run_steps(validated, manager, report=None)


def test_process_keys_are_validated(manager: PluginManager, tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.toml",
        RECIPE.format(plugin=tmp_path / "proc_plugin.py", inputs="[]", count=0, cache="c", counter=""),
    )
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(path, ("process.0.executor=forks",)), manager.registry, manager.failures)
    text = str(caught.value)
    assert "process[0].process_count" in text and "process[0].executor" in text


def test_non_resumable_sampler_with_checkpointing_is_a_validation_error(manager: PluginManager, tmp_path: Path) -> None:
    text = RECIPE.format(plugin=tmp_path / "proc_plugin.py", inputs="[]", count=1, cache="c", counter="")
    text = text.replace(
        "[[process]]", '[data.train.sampler]\nname = "forgetful"\n[checkpoint]\nname = "nockpt"\n[[process]]'
    )
    path = write(tmp_path / "ck.toml", text)
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(path), manager.registry, manager.failures)
    assert "data.train.sampler.name: TypeError: sampler 'forgetful'" in str(caught.value)
    assert "not resumable" in str(caught.value)
    # Without [checkpoint] the same sampler is fine.
    path.write_text(text.replace('[checkpoint]\nname = "nockpt"\n', ""))
    validate(read_recipe(path), manager.registry, manager.failures)


def test_a_registered_datamodule_falls_back_to_the_recipe_tables(manager: PluginManager, tmp_path: Path) -> None:
    text = RECIPE.format(plugin=tmp_path / "proc_plugin.py", inputs="[]", count=1, cache="c", counter="")
    path = write(tmp_path / "dm.toml", text.replace("[[process]]", '[datamodule]\nname = "module"\n[[process]]'))
    validated = validate(read_recipe(path), manager.registry, manager.failures)
    ctx = BuildContext(recipe=validated, seed=0, run_dir=tmp_path)
    module = build_datamodule(validated, manager.registry, ctx)
    for stage in Stage:
        module.setup(stage)
    assert module.train_dataloader() is not None  # from [data.train]
    assert module.primary.calls == ["train", "val", "test"]  # type: ignore[attr-defined]
    assert ctx.train_dataset is not None
    module.teardown()


def test_datamodule_base_class_make_loader(tmp_path: Path) -> None:
    class Mine(DataModule):
        def setup(self, stage: Stage) -> None:
            if stage is Stage.TRAIN:
                data = torch.utils.data.TensorDataset(torch.arange(10.0), torch.arange(10))
                self.set_loader(stage, self.make_loader(data, {"batch_size": 4, "shuffle": True}))

    module = Mine()
    module.bind(BuildContext(recipe=None, seed=0, run_dir=tmp_path), None)  # type: ignore[arg-type]
    module.setup(Stage.TRAIN)
    loader = module.train_dataloader()
    assert len(loader) == 3 and loader.fast_path
    assert module.val_dataloaders() == {}
