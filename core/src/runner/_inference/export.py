"""``runner export``: the trained model as ONNX, a ``torch.export`` program or TorchScript,
checked numerically against eager PyTorch.

The example inputs are one batch of the recipe's data (its first validation split, else
train), taken apart like a task does (:func:`runner.batch_inputs`: the inputs plus the
extra fields the model's ``forward`` declares, such as ``lengths``). The batch dimension
is exported as dynamic where the model allows it. The exported file is then loaded back
and run on the same batch (ONNX under onnxruntime), and the largest absolute difference
to the eager model's outputs is reported; above the tolerance the export fails.

Exports run on the CPU. A failing export is one line naming the operator and the module
(its path in the model and class) where the exporter stopped.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import torch

from runner._contract.batch import batch_inputs, forward_kwargs
from runner._contract.errors import RunnerError
from runner._inference.build import model_and_task

if TYPE_CHECKING:
    from runner._inference.rundir import TrainedRun

#: Format name -> file name written in the run directory's ``export/``.
FILES = {"onnx": "model.onnx", "torch-export": "model.pt2", "torchscript": "model.torchscript.pt"}
#: ONNX files above this size keep their weights in a separate ``.data`` file (protobuf's 2 GB limit).
ONNX_INLINE_BYTES = 1 << 30


class ExportError(RunnerError):
    """An export that failed or whose outputs differ from eager PyTorch."""


@attrs.frozen
class ExportResult:
    """What ``runner export`` reports."""

    output: Path
    fmt: str
    max_abs_diff: float
    samples: int
    seconds: float
    weights: str
    checked_with: str
    notes: tuple[str, ...] = ()


@attrs.frozen
class Example:
    """The example call: positional inputs and keyword fields, and where they came from."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    source: str

    @property
    def rows(self) -> int:
        first = self.args[0]
        return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() else 1


def example_batch(trained: TrainedRun, model: torch.nn.Module, split: str | None) -> Example:
    """One batch of ``split`` (default: the first validation split, else train) on the CPU."""
    from runner._inference.data import split_batches, splits_of

    if split is None:
        names = list(splits_of(trained.recipe))
        split = next((n for n in names if n.startswith("val.")), "train" if "train" in names else None)
        if split is None:
            raise RunnerError("the recipe has no data to take example inputs from; pass --split")
    batches = split_batches(trained.recipe, trained.plugins.registry, trained.run_dir, trained.meta, split)
    batch = next(iter(batches), None)
    if batch is None:
        raise RunnerError(f"--split {split}: no batches to take example inputs from")
    inputs, extras = batch_inputs(batch)
    return Example((inputs,), forward_kwargs(model, extras), split)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the exporters' warnings, progress lines and graph dumps off the terminal (they
    are PyTorch's, not the user's); errors still surface as exceptions."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def dynamic_batch(model: torch.nn.Module, example: Example) -> dict[str, Any] | None:
    """``dynamic_shapes`` making dimension 0 of every tensor input automatic-dynamic, keyed
    by ``forward``'s parameter names (None when the inputs are not plain tensors)."""
    auto = torch.export.Dim.AUTO
    names = [
        p.name
        for p in inspect.signature(model.forward).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if not names or not all(isinstance(v, torch.Tensor) for v in [*example.args, *example.kwargs.values()]):
        return None
    shapes: dict[str, Any] = {names[0]: {0: auto} if example.args[0].dim() else None}
    for key, value in example.kwargs.items():
        shapes[key] = {0: auto} if value.dim() else None
    return shapes


def flat_outputs(value: Any) -> list[torch.Tensor]:
    """Every tensor in an output (a tensor, or tuples, lists and dicts of them), in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in value for t in flat_outputs(value[key])]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in flat_outputs(item)]
    return []


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- the exporters -----------------------------------------------------------------------


def _torch_export(model: torch.nn.Module, example: Example) -> Any:
    return torch.export.export(
        model, example.args, example.kwargs or None, dynamic_shapes=dynamic_batch(model, example), strict=False
    )


def export_torch(model: torch.nn.Module, example: Example, path: Path) -> Any:
    program = _torch_export(model, example)
    _write_atomic(path, lambda tmp: torch.export.save(program, str(tmp)))
    loaded = torch.export.load(str(path)).module()
    return lambda *args, **kwargs: loaded(*args, **kwargs)


def export_torchscript(model: torch.nn.Module, example: Example, path: Path) -> Any:
    if example.kwargs:
        first = next(iter(inspect.signature(model.forward).parameters))
        traced = torch.jit.trace(  # type: ignore[no-untyped-call]
            model, example_kwarg_inputs={first: example.args[0], **example.kwargs}
        )
    else:
        traced = torch.jit.trace(model, example.args)  # type: ignore[no-untyped-call]
    _write_atomic(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    loaded = torch.jit.load(str(path))  # type: ignore[no-untyped-call]
    return lambda *args, **kwargs: loaded(*args, **kwargs)


def export_onnx(model: torch.nn.Module, example: Example, path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise RunnerError(
            "--format onnx needs onnx, onnxscript and onnxruntime: pip install 'runner-core[export]'"
        ) from None
    program = _torch_export(model, example)
    try:
        onnx_program = torch.onnx.export(program, dynamo=True, verbose=False)
    except Exception as exc:  # the graph's nodes say which module called an unsupported operator
        raise ExportError(describe_failure(exc, model, "onnx", program)) from exc
    assert onnx_program is not None
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    external = size > ONNX_INLINE_BYTES
    if external:  # the weights go next to the graph, named after the final file
        onnx_program.save(str(path), external_data=True)
    else:
        _write_atomic(path, lambda tmp: onnx_program.save(str(tmp), external_data=False))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]

    def run(*args: Any, **kwargs: Any) -> list[torch.Tensor]:
        values = [*args, *kwargs.values()]
        feed = {name: value.numpy() for name, value in zip(names, values, strict=False)}
        return [torch.from_numpy(out) for out in session.run(None, feed)]

    return run


EXPORTERS = {"onnx": export_onnx, "torch-export": export_torch, "torchscript": export_torchscript}
CHECKED_WITH = {"onnx": "onnxruntime", "torch-export": "torch.export.load", "torchscript": "torch.jit.load"}


# -- failures ----------------------------------------------------------------------------

_OPERATOR = re.compile(r"op='([\w.]+)'|target=torch\.ops\.([\w.]+)|\b(aten::\w+)")


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 20:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _operator(chain: list[BaseException]) -> str | None:
    for exc in chain:
        for match in _OPERATOR.finditer(str(exc)):
            name = next(group for group in match.groups() if group)
            return name.removesuffix(".default")
    return None


def _module_in_traceback(chain: list[BaseException], names: dict[int, str]) -> tuple[str, Any, str] | None:
    """The innermost module of the model whose ``forward`` was running when the export
    failed: ``(path, module, file:line)``."""
    found = None
    for exc in chain:
        tb = exc.__traceback__
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if isinstance(owner, torch.nn.Module) and id(owner) in names:
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
                found = (names[id(owner)], owner, where)
            tb = tb.tb_next
        if found is not None:
            return found
    return None


def _module_of_operator(program: Any, operator: str) -> tuple[str, str] | None:
    """``(path, class name)`` of the module whose graph node calls ``operator``."""
    for node in program.graph.nodes:
        target = str(getattr(node, "target", ""))
        if node.op == "call_function" and target.removesuffix(".default") == operator:
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, kind = list(stack.values())[-1]
                return str(path), str(getattr(kind, "__name__", kind)).rpartition(".")[2]
    return None


def _first_line(exc: BaseException) -> str:
    for line in str(exc).splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
        if line and not line.startswith(("#", "-")):
            return line if len(line) <= 240 else line[:237] + "..."
    return type(exc).__name__


def describe_failure(exc: BaseException, model: torch.nn.Module, fmt: str, program: Any = None) -> str:
    """One line: which operator, in which module, failed to export, and why (``program``:
    the ``torch.export`` program an ONNX conversion started from, to find the module)."""
    chain = _chain(exc)
    names = {id(module): name or "<root>" for name, module in model.named_modules()}
    operator = _operator(chain)
    place = ""
    located = _module_in_traceback(chain, names)
    if located is not None:
        path, module, where = located
        place = f" in module '{path}' ({type(module).__name__}, {where})"
    elif operator is not None and program is not None:
        owner = _module_of_operator(program, operator)
        if owner is not None:
            place = f" in module '{owner[0]}' ({owner[1]})"
    what = f" at operator {operator}" if operator else ""
    innermost = chain[-1]
    return f"export to {fmt} failed{what}{place}: {type(innermost).__name__}: {_first_line(innermost)}"


# -- the command -------------------------------------------------------------------------


def export(
    trained: TrainedRun,
    fmt: str,
    *,
    output: Path | None = None,
    which: str | None = None,
    split: str | None = None,
    atol: float = 1e-4,
    rtol: float = 1e-3,
) -> ExportResult:
    """Export the run's model to ``fmt``, check it against eager, return what happened."""
    if fmt not in EXPORTERS:
        raise RunnerError(f"--format {fmt}: choose one of {', '.join(EXPORTERS)}")
    started = time.perf_counter()
    cpu = torch.device("cpu")
    model, _, weights = model_and_task(trained, cpu, which)
    example = example_batch(trained, model, split)
    path = output if output is not None else trained.run_dir / "export" / FILES[fmt]
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        eager = flat_outputs(model(*example.args, **example.kwargs))
        try:
            with quiet():
                run = EXPORTERS[fmt](model, example, path)
                exported = flat_outputs(run(*example.args, **example.kwargs))
        except RunnerError:
            raise
        except Exception as exc:
            raise ExportError(describe_failure(exc, model, fmt)) from exc
    if len(exported) != len(eager):
        raise ExportError(f"the {fmt} model returns {len(exported)} outputs, the eager model {len(eager)}")
    diff = 0.0
    for mine, theirs in zip(exported, eager, strict=True):
        if tuple(mine.shape) != tuple(theirs.shape):
            raise ExportError(
                f"the {fmt} model's output has shape {tuple(mine.shape)}, the eager model's {tuple(theirs.shape)}"
            )
        mine, theirs = mine.double(), theirs.double()
        diff = max(diff, float((mine - theirs).abs().max()) if mine.numel() else 0.0)
        if not torch.allclose(mine, theirs, rtol=rtol, atol=atol):
            raise ExportError(
                f"{path}: the {fmt} model's outputs differ from eager PyTorch by up to {diff:.3g} "
                f"(more than atol={atol:g}, rtol={rtol:g}) on {example.rows} samples of {example.source}"
            )
    return ExportResult(
        output=path,
        fmt=fmt,
        max_abs_diff=diff,
        samples=example.rows,
        seconds=time.perf_counter() - started,
        weights=weights.source,
        checked_with=CHECKED_WITH[fmt],
        notes=("TorchScript is deprecated by PyTorch; prefer torch-export or onnx",) if fmt == "torchscript" else (),
    )
