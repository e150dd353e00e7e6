"""The real torchvision, imported through runner.import_torchvision (the core's fix; its
unit tests are core/tests/test_import_torchvision.py)."""

from __future__ import annotations

import runner
from runner._compat import torchvision as tv


def test_torchvision_imports_and_says_how() -> None:
    torchvision = runner.import_torchvision()
    from torchvision.transforms import v2

    assert torchvision.__version__ and v2.RandomResizedCrop
    # Declared exactly when the compiled operators are missing (this machine: a CUDA torchvision
    # wheel beside the CPU torch, where a plain `import torchvision` raises), whichever plugin
    # imported torchvision first in this process: they all go through the one function.
    assert tv.schemas_declared() == (not tv.compiled_ops_available())
