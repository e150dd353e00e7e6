"""runner-checkpoint: crash-safe, verifiable checkpoints and exact resume for runner.

A checkpoint is a directory (``<run_dir>/checkpoints/step-000120/``) holding tensors in
safetensors files, everything else as JSON, and a ``manifest.json`` with the size and
sha256 of every file. Nothing is ever unpickled. This module never imports torch.
"""

from __future__ import annotations

from runner_checkpoint._version import __version__

__all__ = ["__version__"]
