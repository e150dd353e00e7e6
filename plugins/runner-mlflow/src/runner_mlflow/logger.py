"""The ``mlflow`` logger, on ``mlflow.tracking.MlflowClient`` (works with ``mlflow-skinny``).

One MLflow run per runner run. At build: the experiment (created if missing), the run,
its params (the flattened resolved recipe) and ``recipe.toml`` as an artifact; and
``mlflow.json`` in the run directory, saying where the MLflow run is. Records become
metrics named like TensorBoard scalars (``train/loss``, ``val/main/accuracy``) at their
optimizer step, sent in batches by a background thread
(:class:`runner.BufferedLogger`). When the run ends: ``metrics.jsonl`` and
``final_checkpoint.txt`` (the path of the checkpoint ``checkpoints/latest`` names, if the
run has one) as artifacts, and the run's status: FINISHED, FAILED, or KILLED on Ctrl-C.

The default store is one SQLite database shared by every run started in the same
directory (:mod:`runner_mlflow.store`), so runs compare in the MLflow UI. A run continued
in its run directory (``runner resume``) logs to the MLflow run it started (its id is in
``mlflow.json``) instead of opening a new one.

A store that cannot be used is a one-line :class:`runner.RunnerError` when the logger is
built, before training: a missing database driver names the pip extra that installs it,
and ``runner run`` exits with status 2 leaving no run behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner import BufferedLogger, RunnerError, flatten, metric_items
from runner_mlflow import store

#: MLflow's limits: values of params, and entries of one log_batch call.
MAX_PARAM_VALUE = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
CHECKPOINT_FILE = "final_checkpoint.txt"
#: Written to the run directory: where the MLflow run is (tracking URI, experiment and run ids).
LINK_FILE = "mlflow.json"
#: Loggers that narrate creating and migrating an SQL store at INFO level on every start.
_CHATTY = ("mlflow.store.db.utils", "alembic.runtime.migration", "alembic")


@contextlib.contextmanager
def _quiet_store_setup() -> Iterator[None]:
    """Opening a store: without MLflow's INFO lines about its tables, and without the
    deprecation warning SQLAlchemy 2.1 gives once for a relationship MLflow's SQL models
    declare (``lazy="noload"``) when they are imported: neither is the user's to act on."""
    loggers = [logging.getLogger(name) for name in _CHATTY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy is deprecated")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class MlflowLogger(BufferedLogger):
    """Logs params, metrics and artifacts of a runner run to one MLflow run."""

    def __init__(
        self,
        run_dir: Path,
        ctx: Any = None,
        tracking_uri: str = "",
        experiment: str = "",
        run_name: str = "",
        tags: dict[str, str] | None = None,
        log_params: bool = True,
        log_artifacts: bool = True,
        checkpoint_files: bool = False,
    ) -> None:
        super().__init__(max_batch=MAX_METRICS_PER_BATCH)
        self.run_dir = Path(run_dir)
        self.log_artifacts = log_artifacts
        self.checkpoint_files = checkpoint_files
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "") or store.default_tracking_uri()
        problem = store.missing_dependency(uri)
        if problem is not None:
            raise RunnerError(f"mlflow: {problem}")
        if store.is_file_store(uri):  # MLflow 3 opens a file store only when allowed to
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = uri
        recipe = getattr(ctx, "recipe", None)
        resolved = getattr(recipe, "resolved", None)
        self._resolved: dict[str, Any] = resolved if isinstance(resolved, dict) else {}
        name = experiment or str(self._resolved.get("run", {}).get("name") or "runner")
        self.run_id = ""
        self._interrupted = ""
        try:
            with _quiet_store_setup():
                self._start(name, run_name, tags or {}, log_params)
        except Exception as exc:
            if self.run_id:  # the run exists: do not leave it RUNNING
                with contextlib.suppress(Exception):
                    self.client.set_terminated(self.run_id, "FAILED")
            raise RunnerError(f"mlflow: cannot log to {store.shown(uri)}: {_one_line(exc)}") from exc

    def _start(self, experiment: str, run_name: str, tags: dict[str, str], log_params: bool) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from runner import __version__ as runner_version

        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        continued = self._continue_run()
        if not continued:
            run_tags = {"runner.run_dir": str(self.run_dir.resolve()), "runner.version": runner_version, **tags}
            run = self.client.create_run(self.experiment_id, run_name=run_name or self.run_dir.name, tags=run_tags)
            self.run_id = run.info.run_id
        where = {"tracking_uri": self.tracking_uri, "experiment_id": self.experiment_id, "run_id": self.run_id}
        (self.run_dir / LINK_FILE).write_text(json.dumps(where, indent=2) + "\n", encoding="utf-8")

        if log_params and self._resolved and not continued:  # params are immutable: logged once
            params = [Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in flatten(self._resolved).items()]
            for start in range(0, len(params), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=params[start : start + MAX_PARAMS_PER_BATCH])
        if self.log_artifacts and (self.run_dir / "recipe.toml").is_file():
            self.client.log_artifact(self.run_id, str(self.run_dir / "recipe.toml"))

    def _continue_run(self) -> bool:
        """Reopen the MLflow run an earlier start in this run directory logged to (a resume)."""
        try:
            link = read_link(self.run_dir)
        except (OSError, ValueError):
            return False
        if link.get("tracking_uri") != self.tracking_uri or link.get("experiment_id") != self.experiment_id:
            return False
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(link["run_id"])
        except (MlflowException, KeyError):
            return False
        self.run_id = link["run_id"]
        self.client.update_run(self.run_id, status="RUNNING")
        return True

    def write(self, records: list[dict[str, Any]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [
            Metric(name, value, now, int(record.get("step", 0)))
            for record in records
            for name, value in metric_items(record)
        ]
        for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])

    def on_interrupt(self, run: Any, signal: str) -> None:
        """A run hook: a run stopped by a signal ends KILLED (a resume reopens it)."""
        self._interrupted = signal

    def finish(self, error: BaseException | None) -> None:
        from mlflow.entities import RunStatus

        status = "FINISHED"
        if isinstance(error, KeyboardInterrupt) or self._interrupted:
            status = "KILLED"
        elif error is not None:
            status = "FAILED"
        try:
            checkpoint = final_checkpoint(self.run_dir)
            if checkpoint is not None:
                self.client.set_tag(self.run_id, "runner.checkpoint", str(checkpoint))
            if self.log_artifacts:
                self._upload(checkpoint)
        finally:
            self.client.set_terminated(self.run_id, RunStatus.to_string(getattr(RunStatus, status)))

    def _upload(self, checkpoint: Path | None) -> None:
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.is_file():
            self.client.log_artifact(self.run_id, str(metrics))
        if checkpoint is None:
            return
        note = self.run_dir / CHECKPOINT_FILE
        note.write_text(f"{checkpoint}\n", encoding="utf-8")
        self.client.log_artifact(self.run_id, str(note))
        if self.checkpoint_files and checkpoint.is_dir():
            self.client.log_artifacts(self.run_id, str(checkpoint), artifact_path=f"checkpoint/{checkpoint.name}")


def final_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``<run dir>/checkpoints/latest`` names (runner-checkpoint's layout), if any."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    path = pointer.parent / name
    return path.resolve() if name and path.exists() else None


def read_link(run_dir: Path) -> dict[str, str]:
    """``{"tracking_uri", "experiment_id", "run_id"}`` of the MLflow run a runner run logged to."""
    link: dict[str, str] = json.loads((Path(run_dir) / LINK_FILE).read_text(encoding="utf-8"))
    return link
