"""Fixtures: data folders in the formats runner-vision reads, generated per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from vision_files import write_cifar, write_image_folder, write_mnist


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images", {"cat": 3, "dog": 2})


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """One folder holding every dataset's files (for the conformance check)."""
    root = tmp_path / "data"
    write_cifar(root, "cifar10")
    write_cifar(root, "cifar100")
    write_mnist(root)
    write_image_folder(root / "folder", {"a": 2, "b": 2})
    return root
