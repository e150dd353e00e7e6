"""Recipe parameters of the ``wandb`` logger (torch-free)."""

from __future__ import annotations

from typing import Literal

import attrs

from runner import param


@attrs.define
class WandbParams:
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
