"""The ``mlflow`` logger, on ``mlflow.tracking.MlflowClient`` (works with ``mlflow-skinny``).

One MLflow run per runner run. At build: the experiment (created if missing), the run,
its params (the flattened resolved recipe) and ``recipe.toml`` as an artifact; and
``mlflow.json`` in the run directory, saying where the MLflow run is. Records become
metrics named like TensorBoard scalars (``train/loss``, ``val/main/accuracy``) at their
optimizer step, sent in batches by a background thread
(:class:`runner.BufferedLogger`). When the run ends: ``metrics.jsonl`` and
``final_checkpoint.txt`` (the path of the checkpoint ``checkpoints/latest`` names, if the
run has one) as artifacts, and the run's status: FINISHED, FAILED, or KILLED on Ctrl-C.

The default store is MLflow's file store in ``<run dir>/mlruns``: no server, no database,
nothing to install beyond ``mlflow-skinny``, and nothing leaves the machine. MLflow 3 keeps
that backend in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is
true; the logger sets it (for this process, unless already set) only when it opens a
file store itself, and readers need the same (``MLFLOW_ALLOW_FILE_STORE=true mlflow ui
--backend-store-uri runs/NAME/mlruns``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runner import BufferedLogger, flatten, metric_items

STORE_DIR = "mlruns"
#: MLflow's limits: values of params, and entries of one log_batch call.
MAX_PARAM_VALUE = 6000
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
CHECKPOINT_FILE = "final_checkpoint.txt"
#: Written to the run directory: where the MLflow run is (tracking URI, experiment and run ids).
LINK_FILE = "mlflow.json"


def default_tracking_uri(run_dir: Path) -> str:
    return (Path(run_dir) / STORE_DIR).resolve().as_uri()


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


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
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        from runner import __version__ as runner_version

        self.run_dir = Path(run_dir)
        self.log_artifacts = log_artifacts
        self.checkpoint_files = checkpoint_files
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "") or default_tracking_uri(self.run_dir)
        if _is_file_store(uri):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.tracking_uri = uri
        self.client = MlflowClient(tracking_uri=uri)

        recipe = getattr(ctx, "recipe", None)
        resolved = getattr(recipe, "resolved", None)
        resolved = resolved if isinstance(resolved, dict) else {}
        name = experiment or str(resolved.get("run", {}).get("name") or "runner")
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(name)
        run_tags = {"runner.run_dir": str(self.run_dir.resolve()), "runner.version": runner_version, **(tags or {})}
        run = self.client.create_run(self.experiment_id, run_name=run_name or self.run_dir.name, tags=run_tags)
        self.run_id: str = run.info.run_id
        where = {"tracking_uri": uri, "experiment_id": self.experiment_id, "run_id": self.run_id}
        (self.run_dir / LINK_FILE).write_text(json.dumps(where, indent=2) + "\n", encoding="utf-8")

        if log_params and resolved:
            params = [Param(k, str(v)[:MAX_PARAM_VALUE]) for k, v in flatten(resolved).items()]
            for start in range(0, len(params), MAX_PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=params[start : start + MAX_PARAMS_PER_BATCH])
        if log_artifacts and (self.run_dir / "recipe.toml").is_file():
            self.client.log_artifact(self.run_id, str(self.run_dir / "recipe.toml"))

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

    def finish(self, error: BaseException | None) -> None:
        from mlflow.entities import RunStatus

        status = "FINISHED"
        if isinstance(error, KeyboardInterrupt):
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
