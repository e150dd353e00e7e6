"""Import torchvision, also where its compiled operators cannot load.

runner-vision (``runner_vision.tv``) and runner-hf (``runner_hf.tv``: transformers imports
torchvision whenever it is installed) each carry this module, the two copies identical:
they are independent distributions and cannot import each other. Change both together;
a test keeps them equal.

PyPI's Linux torchvision wheels are CUDA builds. Beside a CPU-only torch their compiled
library (``torchvision/_C.so``, which needs ``libc10_cuda.so``) fails to load, which
torchvision tolerates, but torchvision 0.28's ``_meta_registrations`` then calls
``torch.library.register_fake("torchvision::nms")`` without checking, and ``import
torchvision`` dies with ``RuntimeError: operator torchvision::nms does not exist``. The
pure-Python parts (the model architectures and transforms v2 on tensors runner-vision
uses; transformers only needs the import to succeed) work without the compiled operators.

:func:`import_torchvision` imports torchvision normally. Only if that import fails with
exactly this error does it declare the two missing operator schemas (no kernels: calling
``torchvision.ops.nms`` still raises) and import again. A torchvision whose compiled
operators load (a CUDA torch, or PyTorch's CPU wheels of both) is imported untouched.
"""

from __future__ import annotations

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
    """``torchvision``, imported (see the module docstring for when schemas are declared)."""
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc) or "does not exist" not in str(exc):
            raise
        _forget_partial_import()
        _declare_missing_schemas()
        import torchvision
    return torchvision


def schemas_declared() -> bool:
    """Whether this process needed :func:`import_torchvision` to declare the schemas."""
    return _declared is not None


def compiled_ops_available() -> bool:
    """Whether torchvision's compiled operators (``torchvision.ops``, ``torchvision.io`` decoders) work."""
    import_torchvision()
    from torchvision.extension import _has_ops

    return bool(_has_ops())


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

    library = torch.library.Library("torchvision", "DEF")
    for schema in MISSING_SCHEMAS:
        library.define(schema)
    _declared = library
