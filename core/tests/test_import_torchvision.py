"""runner.import_torchvision: the torchvision import fix is the core's, and acts only on its one error.

Stand-in ``torchvision`` packages replace the real one here (none need to be installed);
runner-vision's tests import the real one, and tests/test_optional_plugins.py checks every
plugin that imports it goes through this function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import runner
from runner._compat import torchvision as tv


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
    return runner.import_torchvision()


def test_it_is_public_and_the_core_implementation() -> None:
    assert "import_torchvision" in runner.__all__ and runner.import_torchvision is tv.import_torchvision


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
