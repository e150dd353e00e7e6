"""The Python API for scripts and notebooks: :func:`fit` trains a recipe, :func:`load`
opens a run's trained model for inference.

Both leave the process as they found it (see :mod:`runner._inference.isolation`): two
``fit`` calls in one process give the results two separate ``runner run`` commands give.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from runner._contract.errors import RunnerError
from runner._inference.isolation import isolated

if TYPE_CHECKING:
    import torch

    from runner._contract.recipe import Recipe
    from runner._plugins.manager import PluginManager
    from runner._recipe.source import RecipeSource

#: What ``plugins=`` accepts: ``-p`` specs (a module name or a ``.py`` file) or plugin
#: objects (a module or an instance with hook implementations).
PluginSpec = Any


@attrs.frozen
class FitResult:
    """What :func:`runner.fit` returns: where the run went and how it ended."""

    run_dir: Path
    """The run directory (``runs/<name>``, ``runs/<name>-N`` or the ``run_dir`` given)."""
    summary: dict[str, Any]
    """``summary.json``: steps, epochs, seconds, metrics, stop reason."""
    metrics: dict[str, dict[str, float]]
    """The final metrics by group: ``metrics["val/main"]["accuracy"]``, ``metrics["train"]``."""
    global_step: int
    epochs: int
    seconds: float
    stop_reason: str = ""
    interrupted: str = ""
    """``"SIGINT"`` when Ctrl-C (a notebook's interrupt) stopped training early, else ``""``."""

    def load(self, **kwargs: Any) -> LoadedRun:
        """:func:`runner.load` of this run (same arguments)."""
        return load(self.run_dir, **kwargs)

    def records(self) -> list[dict[str, Any]]:
        """Every record of ``metrics.jsonl`` (train, val and test), in order."""
        path = self.run_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _split_plugins(plugins: Iterable[PluginSpec]) -> tuple[list[str], list[Any]]:
    specs, objects = [], []
    for plugin in plugins:
        if isinstance(plugin, (str, Path)):
            specs.append(str(plugin))
        else:
            objects.append(plugin)
    return specs, objects


def _source(recipe: str | Path | Mapping[str, Any], overrides: Iterable[str]) -> RecipeSource:
    """A recipe file, TOML text (a string with a line break) or a recipe tree (a dict)."""
    from runner._recipe.source import RecipeSource, apply_override, parse_toml, read_recipe

    if isinstance(recipe, Mapping) or (isinstance(recipe, str) and "\n" in recipe):
        from runner._recipe.locate import locate

        if isinstance(recipe, Mapping):
            import tomli_w

            try:
                text = tomli_w.dumps(dict(recipe))
            except TypeError as exc:
                raise RunnerError(f"recipe: not a TOML tree: {exc}") from None
        else:
            text = recipe
        source = RecipeSource("<recipe>", parse_toml(text, "<recipe>"), locate(text, "<recipe>"))
        source.problems.extend(p for p in (apply_override(source, item) for item in overrides) if p is not None)
        return source
    return read_recipe(recipe, overrides, collect=True)


def _manager(source: RecipeSource, specs: list[str], objects: list[Any]) -> PluginManager:
    """Plugins for a recipe: installed ones, the recipe's ``plugins = [...]`` (relative to
    its file), then ``plugins=`` specs and objects."""
    from runner._inference.rundir import add_objects
    from runner._plugins.manager import PluginManager

    listed = source.data.get("plugins", [])
    own = []
    if isinstance(listed, list):
        own = [str(source.directory / p) if isinstance(p, str) and p.endswith(".py") else str(p) for p in listed]
    manager = PluginManager(local_plugins=list(dict.fromkeys([*own, *specs]))).load()
    add_objects(manager, objects)
    return manager


def _validate(source: RecipeSource, manager: PluginManager) -> Recipe:
    from runner._recipe.validate import validate

    return validate(source, manager.registry, manager.failures)


def fit(
    recipe: str | Path | Mapping[str, Any],
    *,
    overrides: Iterable[str] = (),
    run_dir: str | Path | None = None,
    plugins: Iterable[PluginSpec] = (),
    resume: bool | str = False,
    progress: bool = False,
) -> FitResult:
    """Train ``recipe`` like ``runner run`` and return the result.

    ``recipe`` is a recipe file, TOML text (a string with a line break) or a recipe as a
    dict. ``overrides`` are ``-o`` strings (``"run.epochs=3"``). ``run_dir`` defaults to
    the first free ``runs/<name>[-N]``; an existing run directory is continued only with
    ``resume`` (True: its latest checkpoint; a path: that checkpoint). ``plugins`` adds
    local plugins: ``-p`` specs (a ``.py`` file or module name) or plugin objects (a
    module or instance with ``@runner.hookimpl`` functions; in-process backends only,
    since other processes cannot import them).

    Raises :class:`runner.RunnerError` for a bad recipe or a failed run (one clear line);
    a run stopped by Ctrl-C returns with ``interrupted == "SIGINT"``. Process-wide state
    the run changes (RNGs, torch threads and flags, signal handlers, environment, local
    plugin modules) is restored before returning.
    """
    from runner._engine.claim import check_not_foreign, claim, claim_default
    from runner._engine.run import build_backend, execute
    from runner._engine.rundir import SUMMARY_FILE

    specs, objects = _split_plugins(plugins)
    with isolated():
        source = _source(recipe, overrides)
        manager = _manager(source, specs, objects)
        validated = _validate(source, manager)
        if resume and validated.checkpoint is None:
            raise RunnerError("resume needs a [checkpoint] table in the recipe (pip install runner-checkpoint)")
        target = Path(run_dir) if run_dir is not None else None
        if target is not None:
            check_not_foreign(target)
        backend = build_backend(validated, manager)
        if not backend.is_primary:
            raise RunnerError("runner.fit runs the launching process; start ranks with `runner run` instead")
        if target is not None:
            claimed = claim(target, resume=bool(resume))
        elif resume:
            claimed = claim(Path("runs") / validated.run.name, resume=True)
        else:
            claimed = claim_default(Path("runs"), validated.run.name)
        with claimed:
            result = execute(validated, manager, claimed.path, resume=resume, show_progress=progress, backend=backend)
        summary_file = claimed.path / SUMMARY_FILE
        summary = json.loads(summary_file.read_text(encoding="utf-8")) if summary_file.is_file() else {}
    return FitResult(
        run_dir=claimed.path,
        summary=summary,
        metrics={group: dict(values) for group, values in result.metrics.items()},
        global_step=result.global_step,
        epochs=result.epochs,
        seconds=result.seconds,
        stop_reason=result.stop_reason,
        interrupted=result.interrupted,
    )


class LoadedRun:
    """A run's trained model, ready for inference: what :func:`runner.load` returns.

    ``model`` is in eval mode on ``device`` with the chosen weights loaded; ``task`` is the
    recipe's task (its ``predict_step`` turns model outputs into predictions); ``recipe``
    is the run's validated recipe; ``info`` its ``model.json``.
    """

    def __init__(
        self,
        run_dir: Path,
        recipe: Recipe,
        model: Any,
        task: Any,
        device: Any,
        weights: str,
        info: dict[str, Any],
        plugins: PluginManager,
    ) -> None:
        self.run_dir = run_dir
        self.recipe = recipe
        self.model = model
        self.task = task
        self.device = device
        self.weights = weights
        """Where the weights came from (a file, or a checkpoint)."""
        self.info = info
        self._plugins = plugins

    def __repr__(self) -> str:
        return (
            f"LoadedRun({str(self.run_dir)!r}, model={self.recipe.model.name!r}, task={self.recipe.task.name!r}, "
            f"weights={self.weights!r}, device={str(self.device)!r})"
        )

    def predict(self, batch: Any) -> dict[str, torch.Tensor]:
        """The task's predictions for ``batch``: a batch as the recipe's loaders make it
        (``(inputs, targets)``, named fields, or inputs alone, e.g. a tensor of
        features), moved to the model's device. Returns named tensors, one row per sample
        (``{"class": ..., "probabilities": ...}`` for classification)."""
        import torch

        from runner._contract.stage import Stage
        from runner._contract.task import StepInfo
        from runner._engine.loop import move_to_device
        from runner._inference.predict import predict_step

        step = StepInfo(Stage.TEST, device=self.device, want_metrics=False)
        with torch.inference_mode():
            return predict_step(self.task, self.model, move_to_device(batch, self.device), step)

    def batches(self, split: str = "test") -> Iterator[Any]:
        """The batches of one of the recipe's splits (``test``, ``val.main``, ``train``),
        in dataset order, never shuffled: what :meth:`predict` takes."""
        from runner._inference.data import split_batches

        meta = dict(self.info.get("meta") or {})
        yield from split_batches(self.recipe, self._plugins.registry, self.run_dir, meta, split, self.device)


def load(
    run_dir: str | Path,
    *,
    checkpoint: str | None = None,
    device: str | None = None,
    overrides: Iterable[str] = (),
    plugins: Iterable[PluginSpec] = (),
) -> LoadedRun:
    """Open the model a run trained, for inference (:class:`LoadedRun`).

    ``checkpoint`` chooses the weights like ``runner predict --checkpoint``: None (the
    final ``model.safetensors``), a name ``model.json`` lists (``"ema"``), ``"best"`` or
    ``"last"`` (runner-checkpoint's checkpoints), a checkpoint directory or a
    ``.safetensors`` file. ``device`` defaults to the recipe's ``[run] device`` (``auto``:
    CUDA when available). ``overrides`` apply to the run's recipe; ``plugins`` are added
    to those the run was trained with (e.g. a local plugin file that moved).
    """
    from runner._inference.build import model_and_task, resolve_device
    from runner._inference.rundir import open_run

    specs, objects = _split_plugins(plugins)
    with isolated():
        trained = open_run(run_dir, overrides=overrides, plugins=specs, objects=objects)
        for note in trained.notes:
            import warnings

            warnings.warn(f"runner.load: {note}", stacklevel=2)
        where = resolve_device(device or trained.recipe.run.device)
        model, task, weights = model_and_task(trained, where, checkpoint)
    return LoadedRun(trained.run_dir, trained.recipe, model, task, where, weights.source, trained.info, trained.plugins)
