"""The model under the backend's wrapper (DDP's ``.module``), as the core checkpoints it."""

from __future__ import annotations

from typing import Any


def unwrapped(model: Any) -> Any:
    """The module whose state dict checkpoints hold (``model.module`` of a DDP wrapper)."""
    return getattr(model, "module", model)
