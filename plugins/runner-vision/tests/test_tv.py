"""runner_vision.tv: torchvision imports where its compiled operators cannot load, and only there."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from runner_vision import tv


def test_torchvision_imports_and_says_how() -> None:
    torchvision = tv.import_torchvision()
    from torchvision.transforms import v2

    assert torchvision.__version__ and v2.RandomResizedCrop
    # Declared exactly when the compiled operators are missing (this machine: a CUDA torchvision
    # wheel beside the CPU torch, where a plain `import torchvision` raises).
    assert tv.schemas_declared() == (not tv.compiled_ops_available())


@pytest.fixture
def fake_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty place for a stand-in ``torchvision`` package; the real modules are put back afterwards."""
    saved = {n: m for n, m in sys.modules.items() if n == "torchvision" or n.startswith("torchvision.")}
    for name in saved:
        del sys.modules[name]
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tv, "_declared", None)
    monkeypatch.setattr(tv, "_declare_missing_schemas", lambda: pytest.fail("declared schemas"))
    (tmp_path / "torchvision").mkdir()
    yield tmp_path / "torchvision" / "__init__.py"
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def imported(init: Path, body: str) -> ModuleType:
    init.write_text(body)
    return tv.import_torchvision()


def test_a_torchvision_that_imports_is_left_untouched(fake_torchvision: Path) -> None:
    module = imported(fake_torchvision, "FAKE = 1\n")
    assert module.FAKE == 1 and not tv.schemas_declared()


def test_the_missing_operator_error_declares_and_retries(
    fake_torchvision: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(tv, "_declare_missing_schemas", lambda: calls.append(True))
    body = (
        "import builtins\n"
        "if not getattr(builtins, '_fake_tv_retry', False):\n"
        "    builtins._fake_tv_retry = True\n"
        "    raise RuntimeError('operator torchvision::nms does not exist')\n"
        "del builtins._fake_tv_retry\n"
        "FAKE = 2\n"
    )
    assert imported(fake_torchvision, body).FAKE == 2 and calls == [True]


@pytest.mark.parametrize("error", ["RuntimeError('CUDA driver too old')", "ImportError('no module named foo')"])
def test_other_import_errors_are_not_hidden(fake_torchvision: Path, error: str) -> None:
    with pytest.raises((RuntimeError, ImportError), match=error.split("'")[1]):
        imported(fake_torchvision, f"raise {error}\n")
