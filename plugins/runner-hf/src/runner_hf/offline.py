"""Importing the Hugging Face libraries for local work only.

Everything this plugin builds comes from local paths, so before ``datasets`` or
``transformers`` is first imported the hub is switched off (``HF_HUB_OFFLINE``,
``TRANSFORMERS_OFFLINE``, ``HF_DATASETS_OFFLINE`` set to 1 unless the environment already
sets them): nothing is ever downloaded, and a missing file fails at once instead of
trying the network.

``transformers`` imports torchvision whenever it is installed. PyPI's CUDA torchvision
wheel beside a CPU-only torch cannot load its compiled operators, and torchvision 0.28
then fails to import (``operator torchvision::nms does not exist``); so torchvision, when
installed, is imported first through :func:`runner.import_torchvision`, which declares the
two missing operator schemas in exactly that case.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from types import ModuleType

from runner import import_torchvision

OFFLINE = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def go_offline() -> None:
    """Set the hub's offline switches (an explicit setting in the environment wins)."""
    for name in OFFLINE:
        os.environ.setdefault(name, "1")


def _torchvision_importable() -> None:
    # Only when installed: transformers does without torchvision, and imports it when present.
    if find_spec("torchvision") is not None:
        import_torchvision()


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
