"""The ``mlflow`` logger, declared once (torch- and MLflow-free: ``build`` imports the logger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runner import component, param

if TYPE_CHECKING:
    from pathlib import Path

    from runner_mlflow.logger import MlflowLogger


@component
class Mlflow:
    """MLflow tracking: the recipe as params, metrics per step, the recipe and final
    checkpoint path as artifacts. One SQLite store (./mlflow.db) shared by every run
    started in the same directory by default."""

    tracking_uri: str = param(
        "",
        doc="Tracking URI (http://host:5000, sqlite:///mlflow.db, postgresql://..., a file store directory); "
        "empty: MLFLOW_TRACKING_URI if set, else sqlite:///mlflow.db in the working directory, shared by its runs.",
    )
    experiment: str = param("", doc="Experiment name (created if missing); empty: the recipe's [run] name.")
    run_name: str = param("", doc="MLflow run name; empty: the run directory's name.")
    tags: dict[str, str] = param({}, doc="Extra tags set on the MLflow run.")
    log_params: bool = param(True, doc="Log the flattened resolved recipe as params (optimizer.lr, ...).")
    log_artifacts: bool = param(True, doc="Upload recipe.toml, metrics.jsonl and final_checkpoint.txt.")
    checkpoint_files: bool = param(False, doc="Also upload the final checkpoint's files (can be large).")

    def build(self, run_dir: Path, ctx: Any = None) -> MlflowLogger:
        from runner_mlflow.logger import MlflowLogger

        return MlflowLogger(
            run_dir,
            ctx,
            tracking_uri=self.tracking_uri,
            experiment=self.experiment,
            run_name=self.run_name,
            tags=self.tags,
            log_params=self.log_params,
            log_artifacts=self.log_artifacts,
            checkpoint_files=self.checkpoint_files,
        )
