"""Import torchvision, also where its compiled operators cannot load.

PyPI's Linux torchvision wheels are CUDA builds. Beside a CPU-only torch their compiled
library (``torchvision/_C.so``, which needs ``libc10_cuda.so``) fails to load, which
torchvision tolerates, but torchvision 0.28's ``_meta_registrations`` then calls
``torch.library.register_fake("torchvision::nms")`` without checking, and ``import
torchvision`` dies with ``RuntimeError: operator torchvision::nms does not exist``. The
pure-Python parts (model architectures, transforms v2 on tensors) work without the
compiled operators, and libraries that merely import torchvision when it is installed
(transformers, torchmetrics) need only the import to succeed.

:func:`import_torchvision` is the one place that works around it, for every plugin in
the process: it imports torchvision normally, and only if that import fails with exactly
this error does it declare the two missing operator schemas (no kernels: calling
``torchvision.ops.nms`` still raises) and import again. A torchvision whose compiled
operators load (a CUDA torch, or PyTorch's CPU wheels of both) is imported untouched.

This module imports neither torch nor torchvision until :func:`import_torchvision` is
called, so ``import runner`` stays torch-free.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

#: The schemas torchvision registers fake kernels for without checking that they exist.
MISSING_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)

# Kept for the life of the process: a torch.library.Library removes its definitions when collected.
_declared: Any = None


def import_torchvision() -> ModuleType:
    """Import and return ``torchvision``, also beside a torch its compiled operators do not fit.

    Call it instead of ``import torchvision``, and before importing a library that imports
    torchvision whenever it is installed (transformers, torchmetrics): on Linux, PyPI's CUDA
    torchvision wheel beside a CPU-only torch otherwise fails to import with ``operator
    torchvision::nms does not exist``. Only in that case are the missing operator schemas
    declared (without kernels: ``torchvision.ops.nms`` and the ``torchvision.io`` decoders
    still raise, the models and transforms work); a torchvision that imports is untouched.
    Raises ``ImportError`` when torchvision is not installed, and any other import error
    unchanged. Imports torch; safe to call any number of times.
    """
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or "does not exist" not in str(exc):
            raise
    _forget_partial_import()
    _declare_missing_schemas()
    return importlib.import_module("torchvision")


def schemas_declared() -> bool:
    """Whether :func:`import_torchvision` had to declare the schemas in this process."""
    return _declared is not None


def compiled_ops_available() -> bool:
    """Whether torchvision's compiled operators (``torchvision.ops``, ``torchvision.io`` decoders) work."""
    import_torchvision()
    return bool(importlib.import_module("torchvision.extension")._has_ops())


def _forget_partial_import() -> None:
    # The failed import left torchvision and some submodules half-initialised in sys.modules;
    # nothing was registered with torch before the failing call, so importing again is safe.
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def _declare_missing_schemas() -> None:
    global _declared
    if _declared is not None:
        return
    import torch

    library = torch.library.Library("torchvision", "DEF")  # type: ignore[no-untyped-call]
    for schema in MISSING_SCHEMAS:
        library.define(schema)  # type: ignore[no-untyped-call]
    _declared = library
