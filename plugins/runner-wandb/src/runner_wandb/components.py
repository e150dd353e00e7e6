"""The ``wandb`` logger, declared once (torch- and wandb-free: ``build`` imports the logger)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import component, param

if TYPE_CHECKING:
    from pathlib import Path

    from runner_wandb.logger import WandbLogger


@component
class Wandb:
    """Weights & Biases: the resolved recipe as config, metrics by step, a summary and, with
    log_model, the final model as an artifact. Offline run files in the run directory by
    default (wandb sync uploads them)."""

    mode: Literal["", "online", "offline", "disabled"] = param(
        "",
        doc="'online' (stream to W&B: needs wandb login), 'offline' (run files under <run dir>/wandb, upload "
        "later with wandb sync) or 'disabled'; empty: WANDB_MODE if set, else 'offline'.",
    )
    project: str = param("", doc="W&B project; empty: the recipe's [run] name.")
    entity: str = param("", doc="W&B entity (user or team); empty: your default entity.")
    run_name: str = param("", doc="W&B run name; empty: the run directory's name.")
    group: str = param("", doc="Group runs together in the W&B UI (e.g. a sweep or an experiment).")
    tags: list[str] = param([], doc="Tags of the W&B run.")
    notes: str = param("", doc="A description of the run.")
    log_config: bool = param(True, doc="Log the resolved recipe as the run's config (nested tables).")
    log_model: bool = param(
        False,
        doc="When the run finishes, log the final weights as a 'model' artifact: <run dir>/model.safetensors, "
        "else the last checkpoint (runner-checkpoint's checkpoints/latest).",
    )

    def build(self, run_dir: Path, ctx: Any = None) -> WandbLogger:
        from runner_wandb.logger import WandbLogger

        return WandbLogger(
            run_dir,
            ctx,
            mode=self.mode,
            project=self.project,
            entity=self.entity,
            run_name=self.run_name,
            group=self.group,
            tags=self.tags,
            notes=self.notes,
            log_config=self.log_config,
            log_model=self.log_model,
        )
