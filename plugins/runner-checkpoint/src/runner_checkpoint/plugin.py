"""Entry module of the ``runner-checkpoint`` plugin (entry point ``checkpoint``).

Registers the ``default`` checkpointer (declared in :mod:`runner_checkpoint.params`)
and the ``checkpoints`` and ``verify-resume`` commands, all as lazy references: importing
this module never imports torch.
"""

from __future__ import annotations

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
