"""``runner predict``: the task's ``predict_step`` over a dataset, on the recipe's backend.

Every process rebuilds the model with the chosen weights and predicts its share of the
data (the share the backend's rank gets: positions ``rank, rank + world_size, ...`` of the
dataset, the tail padded as training loaders pad it). Outputs are gathered in dataset
order with one sum across processes per output (``Backend.all_reduce_sum``: each
position is filled by exactly one rank, the padding left out), and the primary writes
them. With one process rows are streamed to the file batch by batch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from runner._contract.errors import DataError, PluginError, RunnerError
from runner._contract.recipe import Recipe, SplitConfig
from runner._contract.stage import Stage
from runner._contract.task import StepInfo, default_predict_step
from runner._engine.job import WorkerJob
from runner._inference.outputs import JsonlWriter, ParquetWriter, open_writer
from runner._plugins.manager import PluginManager

if TYPE_CHECKING:
    from runner._contract.backend import Backend
    from runner._inference.rundir import TrainedRun


@attrs.define(eq=False, getstate_setstate=False)  # WorkerJob's: the manager is dropped
class PredictJob(WorkerJob):
    """What every process needs to predict (picklable: the manager is dropped and loaded
    again in a new process from ``local_plugins``)."""

    recipe: Recipe
    run_dir: Path
    info: dict[str, Any]
    split: SplitConfig
    output: Path
    fmt: str
    which: str | None = None
    local_plugins: tuple[str, ...] = ()
    plugins: PluginManager | None = None
    restart: int = 0


@attrs.frozen
class PredictResult:
    """What ``runner predict`` reports."""

    output: Path
    rows: int
    seconds: float
    weights: str


def predict_step(task: Any, model: torch.nn.Module, batch: Any, step: StepInfo) -> dict[str, torch.Tensor]:
    """The task's ``predict_step`` (the default one for a task without), checked: named
    tensors with one row per sample (a one-line error naming the task otherwise)."""
    method = getattr(task, "predict_step", None)
    outputs = method(model, batch, step) if callable(method) else default_predict_step(model, batch)
    if isinstance(outputs, torch.Tensor):
        outputs = {"output": outputs}
    if not isinstance(outputs, Mapping) or not outputs:
        raise PluginError(
            f"task {type(task).__name__}: predict_step returned {type(outputs).__name__}; "
            "it returns named outputs, a dict of tensors with one row per sample"
        )
    checked: dict[str, torch.Tensor] = {}
    rows: int | None = None
    for name, value in outputs.items():
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if tensor.dim() == 0:
            raise PluginError(
                f"task {type(task).__name__}: predict_step output {name!r} is a scalar, not one row per sample"
            )
        if rows is not None and tensor.shape[0] != rows:
            raise PluginError(
                f"task {type(task).__name__}: predict_step outputs have different numbers of rows "
                f"({name!r}: {tensor.shape[0]}, others {rows})"
            )
        rows = int(tensor.shape[0])
        checked[str(name)] = tensor.detach()
    return checked


def samples_in(batch: Any) -> int | None:
    """How many samples a batch holds (its inputs' first dimension), when that is known."""
    from runner._contract.batch import batch_inputs

    try:
        inputs, _ = batch_inputs(batch)
    except DataError:
        return None
    shape = getattr(inputs, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    return len(inputs) if isinstance(inputs, (list, tuple)) else None


def autocast(recipe: Recipe, device: torch.device) -> Any:
    """The training precision's autocast context (a no-op context in fp32)."""
    import contextlib

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.run.precision)
    if dtype is None or (dtype is torch.float16 and device.type != "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def trained_from_job(job: PredictJob) -> TrainedRun:
    from runner._inference.rundir import TrainedRun

    return TrainedRun(job.run_dir, job.info, job.recipe, job.plugin_manager(), [])


def predict_worker(job: PredictJob, backend: Backend) -> PredictResult:
    """Predict this process's share and (on the primary) write the file."""
    from runner._data.build import build_dataset, build_transforms, make_loader
    from runner._data.transforms import Pipeline
    from runner._engine.loop import move_to_device
    from runner._inference.build import build_context, model_and_task
    from runner._samplers.index import ResumableSampler

    started = time.perf_counter()
    trained = trained_from_job(job)
    registry = trained.plugins.registry
    device = backend.device(job.recipe.run.device)
    rank, world = backend.rank, backend.world_size
    model, task, weights = model_and_task(trained, device, job.which, rank, world)
    ctx = build_context(trained, device, rank, world)
    split = job.split
    dataset = build_dataset(split, registry, ctx)
    pipeline = build_transforms(split.transforms, registry, ctx) if split.transforms else Pipeline()
    collate = (
        registry.get("collate", split.collate.name).build(split.collate.params, ctx=ctx) if split.collate else None
    )
    iterable = isinstance(dataset, torch.utils.data.IterableDataset) or not hasattr(dataset, "__len__")
    if iterable and world > 1:
        raise RunnerError(
            f"--data {split.dataset.name}: a stream (an iterable dataset) cannot be split over {world} processes "
            "in order; predict with one: -o run.backend=single"
        )
    sampler = None
    indices: list[int] = []
    if not iterable:
        sampler = ResumableSampler(len(dataset), shuffle=False, rank=rank, world_size=world, drop_last=False)
        indices = sampler.epoch_indices().tolist()
    loader = make_loader(
        dataset,
        split.loader,
        ctx=ctx,
        train=False,
        on_cuda=device.type == "cuda",
        sampler=sampler,
        collate=collate,
        pipeline=pipeline,
    )
    step = StepInfo(Stage.TEST, device=device, want_metrics=False)
    writer = open_writer(job.output, job.fmt) if world == 1 else None
    gathered: dict[str, list[torch.Tensor]] = {}
    done = 0
    try:
        with torch.inference_mode(), autocast(job.recipe, device):
            for batch in loader:
                outputs = predict_step(task, model, move_to_device(batch, device), step)
                rows = next(iter(outputs.values())).shape[0]
                samples = samples_in(batch)
                if samples is not None and rows != samples:
                    raise PluginError(
                        f"task {type(task).__name__}: predict_step returned {rows} rows for a batch of {samples} "
                        "samples; it returns one row per sample"
                    )
                if iterable:
                    indices += range(done, done + rows)
                if done + rows > len(indices):
                    raise DataError(
                        f"predict_step returned {done + rows} rows for {len(indices)} samples; it returns one row "
                        "per sample of the batch"
                    )
                cpu = {name: value.cpu() for name, value in outputs.items()}
                if writer is not None:
                    writer.write(indices[done : done + rows], cpu)
                else:
                    for name, value in cpu.items():
                        gathered.setdefault(name, []).append(value)
                done += rows
        if writer is not None:
            if done == 0:
                raise DataError(f"{split.dataset.path}: no samples to predict")
            writer.close()
            writer = None
    finally:
        if writer is not None:
            writer.abort()
    if world > 1:
        done = _gather_and_write(job, backend, device, gathered, indices, len(dataset))
    return PredictResult(job.output, done, time.perf_counter() - started, weights.source)


def _spec_code(outputs: dict[str, torch.Tensor]) -> int:
    """A small number identifying the output names, trailing shapes and dtypes."""
    import zlib

    text = ";".join(f"{name}:{tuple(value.shape[1:])}:{value.dtype}" for name, value in sorted(outputs.items()))
    return zlib.crc32(text.encode()) % (1 << 20)


def _gather_and_write(
    job: PredictJob,
    backend: Backend,
    device: torch.device,
    gathered: dict[str, list[torch.Tensor]],
    indices: list[int],
    length: int,
) -> int:
    """Put every rank's rows at their dataset positions (one all-reduce per output) and
    write the whole on the primary. Padding positions (beyond the dataset's end) are left
    to the rank that owns the real position."""
    world, rank = backend.world_size, backend.rank
    try:
        outputs = {name: torch.cat(parts) for name, parts in gathered.items()}
    except RuntimeError:
        raise PluginError(
            "predict_step outputs change shape between batches; with several processes every sample's outputs "
            "must have one shape (predict with one process: -o run.backend=single)"
        ) from None
    code = float(_spec_code(outputs))
    agree = backend.all_reduce_sum(torch.tensor([code, code * code], dtype=torch.float64, device=device)).cpu()
    if float(agree[1]) * world != float(agree[0]) ** 2:
        raise PluginError("predict_step returned different outputs (names, shapes or types) on different processes")
    positions = torch.arange(len(indices)) * world + rank
    own = positions < length
    rows = torch.tensor(indices)[own]
    full: dict[str, torch.Tensor] = {}
    for name, value in sorted(outputs.items()):
        kind = value.dtype
        work = value.to(torch.int64) if kind is torch.bool else value
        buffer = torch.zeros((length, *work.shape[1:]), dtype=work.dtype, device=device)
        buffer[rows.to(device)] = work[own].to(device)
        total = backend.all_reduce_sum(buffer).cpu()
        full[name] = total.to(kind) if kind is torch.bool else total
    if backend.is_primary:
        writer: JsonlWriter | ParquetWriter = open_writer(job.output, job.fmt)
        try:
            chunk = 4096
            for start in range(0, length, chunk):
                stop = min(start + chunk, length)
                writer.write(list(range(start, stop)), {name: value[start:stop] for name, value in full.items()})
            writer.close()
        except BaseException:
            writer.abort()
            raise
    backend.barrier()
    return length


def default_output(run_dir: Path, label: str, fmt: str | None) -> Path:
    """``RUN_DIR/predictions/<label>.jsonl`` (or ``.parquet``)."""
    return run_dir / "predictions" / f"{label}.{fmt or 'jsonl'}"


def predict(
    trained: TrainedRun,
    *,
    data: str | None = None,
    split: str | None = None,
    output: Path | None = None,
    fmt: str | None = None,
    which: str | None = None,
) -> PredictResult:
    """Predict on ``data`` or ``split`` with the run's backend; the primary writes ``output``."""
    from runner._data.module import prepare_primary
    from runner._engine.run import build_backend
    from runner._inference.data import select
    from runner._inference.outputs import format_of

    chosen = select(trained.recipe, trained.plugins.registry, trained.meta, data=data, split=split)
    path = output if output is not None else default_output(trained.run_dir, chosen.label, fmt)
    fmt = format_of(path, fmt)
    backend = build_backend(trained.recipe, trained.plugins)
    if backend.is_primary:
        prepare_primary(trained.recipe, trained.plugins, trained.run_dir)
    job = PredictJob(
        recipe=trained.recipe,
        run_dir=trained.run_dir.resolve(),
        info=trained.info,
        split=chosen.split,
        output=path.resolve(),
        fmt=fmt,
        which=which,
        local_plugins=trained.local_plugins,
        plugins=trained.plugins,
    )
    result = backend.launch(predict_worker, job)
    # Say the paths as the user gave them (the job's are absolute, for other processes).
    weights = result.weights.replace(str(job.run_dir), str(trained.run_dir), 1)
    return attrs.evolve(result, output=path, weights=weights)
