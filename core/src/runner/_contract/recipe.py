"""The validated, resolved form of a recipe.

The core's own sections (``[run]``, loader tables) are attrs classes whose fields are
the schema; component tables (``name = ...`` plus parameters) become
:class:`ComponentConfig` checked against the registered component's schema.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from runner._contract.params import SEED_RANGE, at_least, between, one_of_patterns, param

#: The longest run name: the name is a directory name, and file systems limit those to 255 bytes.
MAX_RUN_NAME = 100
_RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*")


def valid_run_name(value: Any) -> str | None:
    """Constraint: ``value`` names one directory under ``runs/``: no path separators, no
    ``.``/``..``, no leading dot or dash, at most :data:`MAX_RUN_NAME` characters."""
    if not isinstance(value, str):
        return None  # the type check reports it
    shown = repr(value[:40] + "..." if len(value) > 40 else value)
    if not value:
        return "must not be empty"
    if len(value) > MAX_RUN_NAME:
        return f"must be at most {MAX_RUN_NAME} characters, found {len(value)}: {shown}"
    if not _RUN_NAME.fullmatch(value):
        return (
            "must be one directory name of letters, digits and - _ . + = @ , (not starting with '.' or '-'), "
            f"found {shown}; use --run-dir to write elsewhere"
        )
    return None


@attrs.define
class RunConfig:
    """The ``[run]`` table: how long and where to train."""

    name: str = param("run", doc="Run name; the default run directory is runs/<name>.", check=valid_run_name)
    seed: int = param(
        0,
        doc="Seed for python, numpy and torch; loaders and samplers derive theirs from it.",
        check=between(*SEED_RANGE),
    )
    epochs: int | None = param(None, doc="Number of training epochs (or set max_steps).", check=at_least(1))
    max_steps: int | None = param(
        None, doc="Stop after this many optimizer steps (wins over epochs when both are set).", check=at_least(1)
    )
    device: str = param(
        "auto",
        doc='"auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N" or "mps".',
        check=one_of_patterns("auto", "cpu", "cuda", r"cuda:\d+", "mps"),
    )
    precision: Literal["fp32", "bf16", "fp16"] = param(
        "fp32", doc="Autocast precision: bf16 on CPU or CUDA; fp16 on CUDA only, with a gradient scaler."
    )
    grad_accum: int = param(1, doc="Micro-batches accumulated per optimizer step.", check=at_least(1))
    clip_grad_norm: float | None = param(None, doc="Clip the global gradient norm to this value.", check=at_least(0))
    val_every: int | None = param(
        None, doc="Validate every N optimizer steps; by default at the end of every epoch.", check=at_least(1)
    )
    log_every: int = param(10, doc="Log training metrics every N optimizer steps.", check=at_least(1))
    max_val_batches: int | None = param(None, doc="Limit batches per validation/test loader.", check=at_least(1))
    backend: str = param("single", doc="Registered backend that runs the loop (see the [backend] table).")
    deterministic: bool = param(False, doc="Use torch's deterministic algorithms (exact reruns).")
    test: bool = param(True, doc="Run the [data.test] loaders after training.")
    num_threads: int | None = param(
        None,
        doc="Torch intra-op threads per training process; default: $OMP_NUM_THREADS when set, else the "
        "physical cores divided by the local processes, less the train loader's workers (at least 1).",
        check=at_least(1),
    )
    compile: bool | Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = param(
        False,
        doc="Compile the model with torch.compile (true, or a mode); state dict keys and checkpoints are unchanged.",
    )
    save_model: bool = param(
        True,
        doc="Write the final weights (model.safetensors) and model.json into the run directory "
        "when training ends; false for benchmarks.",
    )


@attrs.define
class LoaderConfig:
    """A loader table (helios ``DataLoaderParams``)."""

    batch_size: int = param(1, doc="Samples per batch.", check=at_least(1))
    shuffle: bool = param(False, doc="Shuffle every epoch (seeded; resumable).")
    num_workers: int = param(0, doc="Worker processes loading data.", check=at_least(0))
    pin_memory: bool = param(True, doc="Page-locked host memory, applied only when training on CUDA.")
    drop_last: bool = param(False, doc="Drop the last incomplete batch.")
    debug_mode: bool = param(False, doc="Force num_workers = 0 and no prefetch, for debugging.")
    random_seed: int | None = param(None, doc="Loader seed; defaults to [run] seed.", check=between(*SEED_RANGE))
    is_distributed: bool | None = param(None, doc="Shard across ranks; defaults to the backend's world size > 1.")
    persistent_workers: bool = param(False, doc="Keep worker processes alive between epochs.")
    prefetch_factor: int | None = param(None, doc="Batches prefetched per worker.", check=at_least(1))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (round-trips through :meth:`from_dict`)."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> LoaderConfig:
        """Build from a table of fields (unknown keys raise ``TypeError``)."""
        return cls(**table)


@attrs.define
class ProcessConfig:
    """Framework keys of a ``[[process]]`` step, next to the processor's own parameters."""

    inputs: list[str] = param(
        [],
        doc="Input files or glob patterns (relative to the recipe file), split across processes; "
        "URLs (scheme://...) are passed to the processor untouched.",
        path="glob",
    )
    items: list[Any] = param(
        [],
        doc="Any values (ids, records as tables, numbers, strings) passed to the processor untouched, "
        "after the inputs; sharded and cached by their value.",
    )
    process_count: int = param(1, doc="Processes (or threads) that share the inputs.", check=at_least(1))
    executor: str | dict[str, Any] = param(
        "process",
        doc="Who runs the shards: a registered executor by name (built in: 'process', 'thread', 'inline'), "
        "or a table { name = ..., parameters }.",
    )
    output: str | None = param(None, doc="Name of the merged output (default: the processor name).")
    shard_size: int = param(
        1, doc="Inputs per cached shard: a changed input re-processes its shard.", check=at_least(1)
    )
    format: Literal["safetensors", "npz", "arrow", "parquet"] = param(
        "safetensors",
        doc="File format of the cached shards: tensors (safetensors, npz) or records with strings, "
        "ragged lists and nested fields (arrow, parquet: needs pyarrow).",
    )
    cache_dir: str | None = param(
        None, doc="Cache directory (default: $RUNNER_CACHE_DIR, else ~/.cache/runner/process).", path="output"
    )
    analyze: bool = param(False, doc="Also run the processor's analyze() and store its statistics.")


PROCESS_KEYS: tuple[str, ...] = tuple(a.name for a in attrs.fields(ProcessConfig))


@attrs.frozen
class ComponentConfig:
    """A component named in a recipe, with its parameters (defaults filled in)."""

    kind: str
    name: str
    params: dict[str, Any]
    path: str
    framework: dict[str, Any] = attrs.Factory(dict)
    """Keys the framework reads next to the parameters (``[[process]]``: see :class:`ProcessConfig`)."""

    def table(self) -> dict[str, Any]:
        return {"name": self.name, **self.framework, **self.params}


@attrs.frozen
class SplitConfig:
    """One data loader: dataset, loader settings and optional sampler/collate/transforms."""

    key: str
    dataset: ComponentConfig
    loader: LoaderConfig
    sampler: ComponentConfig | None = None
    collate: ComponentConfig | None = None
    transforms: tuple[ComponentConfig, ...] = ()
    loader_component: ComponentConfig | None = None
    """A registered loader named by ``loader.name`` (its own parameters), or None."""


@attrs.frozen
class Recipe:
    """A validated recipe. ``resolved`` is the full tree with every default filled in."""

    path: str
    run: RunConfig
    model: ComponentConfig
    task: ComponentConfig
    optimizer: ComponentConfig | None
    """None: the task, the model or a plugin provides them (``get_optimizers_schedulers``)."""
    backend: ComponentConfig
    resolved: dict[str, Any]
    train: SplitConfig | None = None
    val: dict[str, SplitConfig] = attrs.Factory(dict)
    test: dict[str, SplitConfig] = attrs.Factory(dict)
    scheduler: ComponentConfig | None = None
    callbacks: tuple[ComponentConfig, ...] = ()
    loggers: tuple[ComponentConfig, ...] = ()
    checkpoint: ComponentConfig | None = None
    datamodule: ComponentConfig | None = None
    process: tuple[ComponentConfig, ...] = ()
    plugins: tuple[str, ...] = ()
    sections: dict[str, Any] = attrs.Factory(dict)
    """Every top-level section's validated value by key (``sections["sweep"]``), those with
    attributes above included: a table added to the grammar needs no new attribute."""

    def components(self) -> list[ComponentConfig]:
        """Every component the recipe names, in recipe order."""
        found: list[ComponentConfig] = []
        for split in [self.train, *self.val.values(), *self.test.values()]:
            if split is not None:
                found += [split.dataset, *filter(None, [split.sampler, split.collate]), *split.transforms]
                found += [split.loader_component] if split.loader_component is not None else []
        found += [c for c in (self.model, self.task, self.optimizer) if c is not None]
        found += [self.backend]
        found += [c for c in (self.scheduler, self.checkpoint, self.datamodule) if c is not None]
        return [*found, *self.callbacks, *self.loggers, *self.process]


@attrs.frozen
class ProcessingRecipe:
    """A validated processing-only recipe: ``[[process]]`` steps (and the ``plugins`` they
    need) and nothing else, for ``runner process`` (see ``grammar.PROCESSING``)."""

    path: str
    resolved: dict[str, Any]
    process: tuple[ComponentConfig, ...]
    plugins: tuple[str, ...] = ()
    sections: dict[str, Any] = attrs.Factory(dict)

    def components(self) -> list[ComponentConfig]:
        """Every component the recipe names, in recipe order."""
        return list(self.process)
