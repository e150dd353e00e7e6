"""Entry module of the ``runner-checkpoint`` plugin (entry point ``checkpoint``).

Registers the ``default`` checkpointer and the ``checkpoints`` and ``verify-resume``
commands, all as lazy references, and answers ``load_model_weights`` (``--checkpoint
best|last|DIR``) from the checkpoints: importing this module never imports torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from runner import RegisterCommand, RegisterComponent, hookimpl


@hookimpl
def register_checkpointers(register: RegisterComponent) -> None:
    """Register the ``default`` checkpointer."""
    register("default", "runner_checkpoint.params:CheckpointParams")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner checkpoints`` and ``runner verify-resume``."""
    register(
        "checkpoints",
        "runner_checkpoint.cli:checkpoints_group",
        help="List, verify and show the checkpoints of a run directory.",
    )
    register(
        "verify-resume",
        "runner_checkpoint.verify_resume:verify_resume_command",
        help="Prove a recipe resumes exactly: SIGKILL it at step K, resume, compare metrics.",
    )


@hookimpl
def load_model_weights(run_dir: Path, which: str) -> dict[str, Any] | None:
    """The model weights of the checkpoint ``which`` names (``best``, ``last``, a checkpoint
    directory, another run directory), or None when it names no checkpoint."""
    from runner_checkpoint import weights

    path = weights.find_checkpoint(Path(run_dir), which)
    if path is None:
        return None
    print(f"checkpoint: model weights from {path}{weights.describe(path)}", file=sys.stderr, flush=True)
    return weights.load_model_weights(path)
