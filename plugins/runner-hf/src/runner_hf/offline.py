"""Importing the Hugging Face libraries for local work only.

Everything this plugin builds comes from local paths, so before ``datasets`` or
``transformers`` is first imported the hub is switched off (``HF_HUB_OFFLINE``,
``TRANSFORMERS_OFFLINE``, ``HF_DATASETS_OFFLINE`` set to 1 unless the environment already
sets them): nothing is ever downloaded, and a missing file fails at once instead of
trying the network.

``transformers`` imports torchvision whenever it is installed. PyPI's CUDA torchvision
wheel beside a CPU-only torch cannot load its compiled operators, and torchvision 0.28
then fails to import (``operator torchvision::nms does not exist``); the same guard as
runner-vision's declares the two missing operator schemas in exactly that case.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any

OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
MISSING_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_declared: Any = None  # the torch.library.Library must outlive the import


def go_offline() -> None:
    """Set the hub's offline switches (an explicit setting in the environment wins)."""
    for name in OFFLINE:
        os.environ.setdefault(name, "1")


def _torchvision_importable() -> None:
    global _declared
    from importlib.util import find_spec

    if "torchvision" in sys.modules or find_spec("torchvision") is None:
        return
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or "does not exist" not in str(exc):
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        import torch

        if _declared is None:
            _declared = torch.library.Library("torchvision", "DEF")
            for schema in MISSING_SCHEMAS:
                _declared.define(schema)
        import torchvision  # noqa: F401


def transformers() -> ModuleType:
    """``transformers``, imported offline."""
    go_offline()
    _torchvision_importable()
    import transformers as module

    return module


def datasets() -> ModuleType:
    """``datasets``, imported offline, its progress bars off (runner reports progress itself)."""
    go_offline()
    import datasets as module

    module.disable_progress_bars()
    return module
