"""Run a recipe's ``[[process]]`` steps (PyMarlin ``DataInterface.process_data`` and
``multi_process_data``) through the content-addressed shard cache.

A step's inputs (files, glob patterns, URLs) and items (any values) are grouped into shards
of ``shard_size`` entries (:mod:`runner._processing.inputs`).
Shards already in the cache are not processed again; the others are split across
``process_count`` worker processes (or threads) like ``multi_process_data`` splits list
arguments. Under a distributed launch (``RANK``/``WORLD_SIZE``, or ``NODE_RANK`` +
``LOCAL_RANK`` + ``LOCAL_WORLD_SIZE`` as PyMarlin's ``DistributedPreprocessArguments``)
each rank processes only shards ``i`` with ``i % world_size == rank``; the primary waits
for every shard and writes the merged output's manifest. Every node must share the cache
directory: the primary writes a marker there that the other ranks wait to see before they
process anything (:mod:`runner._processing.nodes`).

A processor (``register_processors``) is an object with ``process(inputs) -> {name: array}``
(rows aligned across names; ``inputs`` is the shard's list of file paths, URLs and items,
or ``[]`` for a step without any; with ``format = "arrow"`` or ``"parquet"`` any columns or
records: :mod:`runner._processing.records`) and optionally ``analyze(data) -> dict`` of JSON statistics over
the merged output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from runner._contract.errors import DataError, PluginError, RunnerError
from runner._contract.recipe import ComponentConfig, ProcessConfig
from runner._processing import nodes
from runner._processing.cache import Cache, cache_root, step_key
from runner._processing.executors import ShardExecutor
from runner._processing.inputs import plan_shards
from runner._processing.shards import Shard

Report = Callable[[str], None]


@attrs.frozen
class DistArgs:
    """Which share of the shards this process owns (PyMarlin ``DistributedPreprocessArguments``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    node_rank: int = 0

    @property
    def is_primary(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DistArgs:
        """From torchrun-style variables; a single process when none are set."""
        env = dict(os.environ if env is None else env)
        local_rank = int(env.get("LOCAL_RANK", 0))
        local_size = int(env.get("LOCAL_WORLD_SIZE", 1))
        node_rank = int(env.get("NODE_RANK", env.get("GROUP_RANK", 0)))
        nodes = int(env.get("NNODES", 1))
        rank = int(env.get("RANK", node_rank * local_size + local_rank))
        world_size = int(env.get("WORLD_SIZE", nodes * local_size))
        if not 0 <= rank < world_size:
            raise RunnerError(f"distributed preprocessing: rank {rank} outside world size {world_size}")
        return cls(rank=rank, world_size=world_size, local_rank=local_rank, node_rank=node_rank)


@attrs.frozen
class StepResult:
    """What one step did: ``processed`` shards ran the processor, ``cached`` were reused."""

    name: str
    output: str
    shards: int
    processed: int
    cached: int
    skipped_other_ranks: int
    step_key: str
    analysis: dict[str, Any] | None
    cache_dir: Path

    def summary(self) -> str:
        mine = self.shards - self.skipped_other_ranks
        if self.processed == 0:
            what = f"nothing to do, all {mine} shard(s) cached"
        else:
            what = f"processed {self.processed} shard(s), {self.cached} cached"
        if self.skipped_other_ranks:
            what += f", {self.skipped_other_ranks} left to other ranks"
        return f"process {self.name!r} -> output {self.output!r}: {what} ({self.cache_dir})"


# -- steps -------------------------------------------------------------------------


def step_config(step: ComponentConfig) -> ProcessConfig:
    return ProcessConfig(**step.framework) if step.framework else ProcessConfig()


def executor_table(value: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, parameters)`` of a step's ``executor`` value (a name or a component table)."""
    if isinstance(value, str):
        return value, {}
    table = dict(value)
    return str(table.pop("name")), table


def build_executor(registry: Any, value: str | Mapping[str, Any], where: str) -> ShardExecutor:
    """The executor a step names, built from its parameters."""
    name, params = executor_table(value)
    component = registry.get("executor", name)
    executor = component.build(params)
    if not callable(getattr(executor, "run", None)):
        raise PluginError(f"{where}: executor {name!r} ({component.plugin}) has no run() method")
    return executor  # type: ignore[no-any-return]


def run_step(
    step: ComponentConfig,
    registry: Any,
    *,
    dist: DistArgs | None = None,
    analyze: bool = False,
    report: Report | None = None,
    wait_timeout: float = 3600.0,
    base_dir: Path | None = None,
) -> StepResult:
    """Run one ``[[process]]`` step through the cache; see the module documentation."""
    dist = dist or DistArgs()
    keys = step_config(step)
    component = registry.get("processor", step.name)
    plugin = f"{component.plugin.dist} {component.plugin.version}"
    output = keys.output or step.name
    cache = Cache(cache_root(keys.cache_dir), keys.format)
    shards = plan_shards(step, keys, plugin, step.path, base_dir)
    key = step_key([s.key for s in shards])
    if dist.world_size > 1:  # every node must see the primary's cache (module documentation)
        if dist.is_primary:
            nodes.write_marker(cache.root, key, dist.world_size)
        else:
            nodes.wait_for_marker(cache.root, key, where=step.path, rank=dist.rank, node_rank=dist.node_rank)
    mine = [s for s in shards if s.index % dist.world_size == dist.rank]
    todo = [s for s in mine if not cache.has_shard(s.key)]
    processor = None
    if todo:
        processor = component.build(step.params)
        if not callable(getattr(processor, "process", None)):
            raise PluginError(f"processor {step.name!r} ({component.plugin}) has no process() method")
        executor = build_executor(registry, keys.executor, f"{step.path}.executor")
        try:
            executor.run(processor, todo, cache, keys.process_count)
        except RunnerError:
            raise
        except Exception as exc:
            # Whichever executor ran it (a worker process, a Ray task), an exception out of
            # the shards is the processor's: name its plugin, not the executor's. (Writing
            # the cache raises DataErrors naming the cache and the field, passed on above.)
            detail = str(exc).strip().splitlines()
            raise PluginError(
                f"{step.path}: processor {step.name!r} ({component.plugin}) raised "
                f"{type(exc).__name__}: {detail[0] if detail else ''}".rstrip(": ")
            ) from exc
    analysis = None
    if dist.is_primary:
        _wait_for(cache, shards, wait_timeout)
        previous = cache.read_manifest(output) or {}
        analysis = previous.get("analysis") if previous.get("step_key") == key else None
        if (analyze or keys.analyze) and analysis is None:
            processor = processor or component.build(step.params)
            analyze_fn = getattr(processor, "analyze", None)
            if callable(analyze_fn):
                analysis = dict(analyze_fn(cache.load_output_from([s.key for s in shards])))
        manifest = {
            "processor": step.name,
            "plugin": plugin,
            "params": step.params,
            "step_key": key,
            "format": keys.format,
            "shards": [s.key for s in shards],
            "inputs": [list(s.inputs) for s in shards],
            "analysis": analysis,
        }
        if manifest != previous:
            cache.write_manifest(output, manifest)
    result = StepResult(
        name=step.name,
        output=output,
        shards=len(shards),
        processed=len(todo),
        cached=len(mine) - len(todo),
        skipped_other_ranks=len(shards) - len(mine),
        step_key=key,
        analysis=analysis,
        cache_dir=cache.root,
    )
    if report is not None:
        report(result.summary())
    return result


def _wait_for(cache: Cache, shards: list[Shard], timeout: float) -> None:
    """The primary merges only once every rank has written its shards."""
    deadline = time.monotonic() + timeout
    while True:
        missing = [s for s in shards if not cache.has_shard(s.key)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise DataError(
                f"timed out waiting for {len(missing)} shard(s) from other ranks in cache {cache.root} "
                "(every node must share this directory)"
            )
        time.sleep(0.2)


def run_steps(
    recipe: Any,
    plugins: Any,
    *,
    dist: DistArgs | None = None,
    analyze: bool = False,
    report: Report | None = print,
) -> list[StepResult]:
    """Run every ``[[process]]`` step of ``recipe`` in order (relative inputs are read
    from the recipe's directory)."""
    registry = plugins.registry if hasattr(plugins, "registry") else plugins
    dist = dist or DistArgs.from_env()
    base_dir = Path(recipe.path).parent if getattr(recipe, "path", None) else None
    return [
        run_step(step, registry, dist=dist, analyze=analyze, report=report, base_dir=base_dir)
        for step in recipe.process
    ]
