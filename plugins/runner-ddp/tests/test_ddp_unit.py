"""In-process checks of the ddp plugin: registration, parameters, environments, bad
input, failure reports and the sample accounting of re-sharded epochs (no processes)."""

from __future__ import annotations

import collections
import signal
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
from ddp_helpers import recipe

from runner import ResumableSampler, RunnerError
from runner._plugins.manager import PluginManager
from runner._plugins.registry import resolve_reference
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner._schema.check import check_table
from runner._schema.fields import schema_from_attrs
from runner.testing import assert_entry_module_torch_free
from runner_ddp import failures, plugin
from runner_ddp.backend import DDP, port_in_use, recipe_digest
from runner_ddp.env import first_host, from_environ, has_launcher
from runner_ddp.params import DDPParams
from runner_ddp.sharding import EvalShard, ResumedShard

# -- plugin contract ----------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_entry_module_does_not_import_torch() -> None:
    assert_entry_module_torch_free("runner_ddp.plugin", also=("runner_ddp.params",))


def test_entry_point_and_lazy_registration() -> None:
    points = {ep.name: ep.value for ep in metadata.entry_points(group="runner")}
    assert points.get("ddp") == "runner_ddp.plugin"
    found: dict[str, Any] = {}

    def register(name: str, factory: Any, *, params: type | str | None = None, doc: str | None = None) -> None:
        found[name] = (factory, params, doc)

    plugin.register_backends(register=register)
    factory, params, doc = found["ddp"]
    assert factory == "runner_ddp.params:DDPParams" and params is None and doc is None
    assert resolve_reference(factory) is DDPParams


def test_params_schema_accepts_and_rejects() -> None:
    fields = schema_from_attrs(DDPParams).fields
    converted, issues = check_table({"nproc_per_node": 4, "nnodes": "1:4", "rdzv_endpoint": "node0:29400"}, fields)
    assert not issues and converted["nproc_per_node"] == 4 and converted["nnodes"] == "1:4"
    assert check_table({"nproc_per_node": "auto", "rdzv_endpoint": "[::1]:29400"}, fields)[1] == []
    bad = {"nproc_per_node": 0, "nnodes": "4:1", "process_group": "mpi", "rdzv_endpoint": "a b", "max_restarts": -1}
    _, issues = check_table(bad, fields)
    assert {path[0] for path, _ in issues} == set(bad)


def test_recipe_validates_with_the_installed_plugins(tmp_path: Path) -> None:
    manager = PluginManager(local_plugins=[]).load()
    path = tmp_path / "r.toml"
    import tomli_w

    tree = recipe()
    tree["plugins"] = []
    tree["data"]["train"]["dataset"] = {"name": "synthetic", "split": "train"}
    tree["data"]["val"]["main"]["dataset"] = {"name": "synthetic", "split": "val"}
    tree["callbacks"] = []
    path.write_text(tomli_w.dumps(tree), encoding="utf-8")
    validated = validate(read_recipe(path), manager.registry, manager.failures)
    assert validated.backend.name == "ddp" and validated.backend.params["nproc_per_node"] == 2
    backend = manager.registry.get("backend", "ddp").build(validated.backend.params)
    assert isinstance(backend, DDP) and backend.is_primary and backend.env is None


# -- environments -------------------------------------------------------------------------

TORCHRUN = {
    "RANK": "3",
    "WORLD_SIZE": "4",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "MASTER_ADDR": "node0",
    "MASTER_PORT": "29500",
    "TORCHELASTIC_RESTART_COUNT": "2",
}


def test_torchrun_environment() -> None:
    assert has_launcher(TORCHRUN)
    env = from_environ(TORCHRUN)
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (3, 4, 1, 2)
    assert (env.master_addr, env.master_port, env.restart_count, env.source) == ("node0", 29500, 2, "env")


def test_slurm_environment_derives_the_master() -> None:
    slurm = {
        "SLURM_PROCID": "5",
        "SLURM_NTASKS": "8",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_TASKS_PER_NODE": "4(x2)",
        "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_JOB_ID": "123456",
    }
    assert has_launcher(slurm) and not has_launcher({**slurm, "SLURM_NTASKS": "1"})
    env = from_environ(slurm)
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (5, 8, 1, 4)
    assert (env.master_addr, env.master_port, env.source) == ("gpu07", 20000 + 123456 % 20000, "slurm")
    assert from_environ(slurm, "head:4000").master_addr == "head"
    assert first_host("a1,b[2-3]") == "a1" and first_host("n[010,012-014]") == "n010"


def test_no_launcher_is_launch_mode_and_join_without_one_is_an_error() -> None:
    assert not has_launcher({})
    assert DDP(DDPParams(), environ={}).env is None
    with pytest.raises(RunnerError, match="mode = 'join' but no launcher"):
        DDP(DDPParams(mode="join"), environ={})
    joined = DDP(DDPParams(), environ=TORCHRUN)
    assert joined.env is not None and joined.rank == 3 and not joined.is_primary
    assert DDP(DDPParams(mode="launch"), environ=TORCHRUN).env is None


# -- bad input ----------------------------------------------------------------------------


def _recipe(tmp_path: Path, **overrides: Any) -> Any:
    manager = PluginManager(local_plugins=[]).load()
    tree = recipe(**overrides)
    tree["plugins"] = []
    tree["data"] = {"train": {"dataset": {"name": "synthetic", "split": "train"}}}
    tree["callbacks"] = []
    import tomli_w

    path = tmp_path / "r.toml"
    path.write_text(tomli_w.dumps(tree), encoding="utf-8")
    return validate(read_recipe(path), manager.registry, manager.failures)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown on machines without CUDA")
def test_nccl_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(RunnerError, match="process_group = 'nccl' needs CUDA"):
        DDP(DDPParams(process_group="nccl"), environ={})


def test_more_processes_than_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    validated = _recipe(tmp_path)
    cuda_recipe = attrs.evolve(validated, run=attrs.evolve(validated.run, device="cuda"))
    with pytest.raises(RunnerError, match=r"nproc_per_node = 4 but only 2 GPUs are visible"):
        DDP(DDPParams(nproc_per_node=4), environ={}).plan(cuda_recipe)
    plan = DDP(DDPParams(nproc_per_node="auto"), environ={}).plan(cuda_recipe)
    assert (plan.nproc, plan.process_group, plan.start_method) == (2, "nccl", "spawn")
    pinned = attrs.evolve(validated, run=attrs.evolve(validated.run, device="cuda:1"))
    with pytest.raises(RunnerError, match="would put all 2 processes on one GPU"):
        DDP(DDPParams(nproc_per_node=2), environ={}).plan(pinned)
    cpu = DDP(DDPParams(nproc_per_node="auto"), environ={}).plan(validated)
    assert (cpu.nproc, cpu.device_type, cpu.process_group) == (2, "cpu", "gloo")
    with pytest.raises(RunnerError, match="needs \\[run\\] device = 'cuda' or 'auto', not 'cpu'"):
        DDP(DDPParams(process_group="nccl"), environ={}).plan(validated)


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert port_in_use(port)
        backend = DDP(DDPParams(rdzv_endpoint=f"localhost:{port}"), environ={})
        with pytest.raises(RunnerError, match=f"port {port} is already in use"):
            backend.launch(lambda job, b: None, _job(tmp_path))
    assert not port_in_use(port)


def test_several_nodes_need_an_endpoint(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match="nnodes = 2 needs rdzv_endpoint"):
        DDP(DDPParams(nnodes=2), environ={}).launch(lambda job, b: None, _job(tmp_path))


def _job(tmp_path: Path) -> Any:
    from runner._engine.job import Job  # runner.Job is the protocol; this is the engine's class

    return Job(recipe=_recipe(tmp_path), run_dir=tmp_path / "run")


def test_recipe_digest_ignores_only_the_node_rank(tmp_path: Path) -> None:
    validated = _recipe(tmp_path)
    tree = validated.resolved
    other_node = attrs.evolve(validated, resolved={**tree, "backend": {**tree["backend"], "node_rank": 1}})
    other_seed = attrs.evolve(validated, resolved={**tree, "run": {**tree["run"], "seed": 1}})
    assert recipe_digest(other_node) == recipe_digest(validated) != recipe_digest(other_seed)


# -- failure reports ----------------------------------------------------------------------


def _raise(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_root_cause_prefers_a_real_exception_over_lost_connections(tmp_path: Path) -> None:
    peer = failures.Markers(tmp_path, 0, 0)
    peer.mark("started")
    peer.report(_raise(RuntimeError("[pair.cc:534] Connection closed by peer [127.0.0.1]:1234")))
    culprit = failures.Markers(tmp_path, 1, 0)
    culprit.mark("started")
    culprit.report(_raise(ValueError("bad batch")))
    cause = failures.root_cause(failures.read_attempt(tmp_path), {0: (1, 11)})
    assert cause.rank == 1 and cause.lines()[0].startswith("rank 1 on ") and "ValueError: bad batch" in str(cause)


def test_root_cause_names_a_rank_that_died_silently(tmp_path: Path) -> None:
    for rank in range(3):
        failures.Markers(tmp_path, rank, 1).mark("started")
    failures.Markers(tmp_path, 0, 1).report(_raise(RuntimeError("Connection reset by peer")))
    failures.Markers(tmp_path, 2, 1).mark("terminated")
    cause = failures.root_cause(failures.read_attempt(tmp_path), {})
    assert cause.rank == 1 and "died without an exception" in str(cause) and "(after 1 restart)" in str(cause)
    signalled = failures.root_cause(failures.read_attempt(tmp_path), {1: (-int(signal.SIGKILL), 42)})
    assert "rank 1 (pid 42) was killed by SIGKILL" in str(signalled)


def test_root_cause_keeps_a_runner_error_as_written(tmp_path: Path) -> None:
    for rank in range(2):
        failures.Markers(tmp_path, rank, 0).report(_raise(RunnerError("the recipe of rank 1 differs")))
    cause = failures.root_cause(failures.read_attempt(tmp_path), {})
    assert cause.lines() == ["ranks 0, 1: the recipe of rank 1 differs"] and cause.exit_code == 2


# -- sample accounting --------------------------------------------------------------------


def _epoch(samplers: list[ResumableSampler], batch: int, batches: int | None = None) -> list[int]:
    """Indices the ranks read in ``batches`` batches each (all when None)."""
    seen: list[int] = []
    for sampler in samplers:
        order = list(sampler)
        seen += order if batches is None else order[: batches * batch]
    return seen


def _shards(world: int, length: int, drop_last: bool = False) -> list[ResumableSampler]:
    return [
        ResumableSampler(length, shuffle=True, seed=7, rank=r, world_size=world, drop_last=drop_last)
        for r in range(world)
    ]


@pytest.mark.parametrize("length", [59, 60, 61])
@pytest.mark.parametrize(("before", "after"), [(2, 1), (2, 3), (4, 2), (3, 4), (1, 3)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_resumed_epoch_skips_and_repeats_nothing(length: int, before: int, after: int, drop_last: bool) -> None:
    batch = 3
    first = _shards(before, length, drop_last)
    for sampler in first:
        sampler.set_epoch(4)
    done = 2  # batches each rank finished before the checkpoint
    consumed = _epoch(first, batch, done)
    offset = done * batch * before
    rest = [ResumedShard(s, epoch=4, offset=offset) for s in _shards(after, length, drop_last)]
    assert len({len(s) for s in rest}) == 1  # every rank takes the same number of steps
    seen = collections.Counter(consumed + _epoch(rest, batch))
    remaining = length - offset
    if drop_last:
        assert max(seen.values()) == 1 and len(seen) == offset + remaining - remaining % after
    else:
        assert set(seen) == set(range(length))
        pad = -(-remaining // after) * after - remaining
        assert sum(seen.values()) - length == pad  # only the documented padding repeats
    for sampler in rest:  # the next epoch is a whole one again
        sampler.set_epoch(5)
        assert sampler.global_offset == 0 and len(sampler) == len(_shards(after, length, drop_last)[0])


@pytest.mark.parametrize(("length", "world"), [(31, 2), (31, 3), (8, 3), (2, 3)])
def test_eval_shards_see_every_sample_once(length: int, world: int) -> None:
    shards = [EvalShard(ResumableSampler(length, shuffle=False, rank=r, world_size=world)) for r in range(world)]
    seen = [i for shard in shards for i in shard]
    assert sorted(seen) == list(range(length))
    assert [len(s) for s in shards] == [len(list(s)) for s in shards]


def test_conformance(runner_tester: Any) -> None:
    assert runner_tester.check_components(plugin) == []
