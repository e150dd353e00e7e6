"""In-memory image datasets: CIFAR-10/100 (python pickle batches) and MNIST/Fashion-MNIST (IDX files).

Read from local files only; nothing is downloaded. A missing file is one
:class:`runner.DataError` saying where to put which files.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from runner import DataError
from runner_vision import safe_pickle
from runner_vision.images import Dtype

Split = Literal["train", "test"]


class ArrayImages(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """``(image, label)`` samples from uint8 ``(N, C, H, W)`` images held in memory.

    Images are float32 in [0, 1] by default; with ``dtype = "uint8"`` they stay uint8 and the
    dataset exposes ``tensors``, which gives the loader its batched fast path.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: Sequence[str], dtype: Dtype) -> None:
        self.images = torch.from_numpy(np.array(images, dtype=np.uint8, order="C"))  # writable: frombuffer is not
        self.labels = torch.from_numpy(labels.astype(np.int64))
        self.dtype: Dtype = dtype
        _, channels, height, width = self.images.shape
        self.meta: dict[str, Any] = {
            "num_classes": len(classes),
            "classes": list(classes),
            "in_channels": int(channels),
            "image_size": [int(height), int(width)],
        }
        if dtype == "uint8":
            self.tensors = (self.images, self.labels)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        return (image.float().div_(255) if self.dtype == "float32" else image), self.labels[index]


# -- CIFAR ------------------------------------------------------------------------------------

CIFAR = {
    # name: (folder as extracted from the archive, train files, test files, label key, meta file, names key)
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        "labels",
        "batches.meta",
        "label_names",
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", "meta", "fine_label_names"),
}


def _cifar_folder(root: Path, name: str) -> Path:
    folder, train, test, *_ = CIFAR[name]
    for candidate in (root / folder, root):
        if all((candidate / f).is_file() for f in (*train, *test)):
            return candidate
    missing = [f for f in (*train, *test) if not (root / folder / f).is_file() and not (root / f).is_file()]
    raise DataError(
        f"{name}: {root} lacks {', '.join(missing)}; nothing is downloaded: extract the python version of "
        f"the dataset ({folder}/ with {', '.join((*train, *test))}) into {root}"
    )


def _cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = safe_pickle.load(path)
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        raise DataError(f"{path}: expected a dict with 'data' and {label_key!r}, found {_shape_of(batch)}")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), found {_shape_of(data)}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: {label_key!r} must hold {data.shape[0]} integer labels")
    return data.reshape(-1, 3, 32, 32), labels


def _shape_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array {value.dtype} {value.shape}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:6]}"
    return type(value).__name__


def _cifar_classes(folder: Path, meta_file: str, key: str, count: int) -> list[str]:
    path = folder / meta_file
    if path.is_file():
        meta = safe_pickle.load(path)
        names = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(names, list) and len(names) == count:
            return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return [str(i) for i in range(count)]


def cifar(name: str, root: str, split: Split, dtype: Dtype) -> ArrayImages:
    """CIFAR-10 or -100 (``name``: ``cifar10`` or ``cifar100``) ``split`` from the python batches under ``root``."""
    folder = _cifar_folder(Path(root).expanduser(), name)
    _, train, test, label_key, meta_file, names_key = CIFAR[name]
    parts = [_cifar_batch(folder / f, label_key) for f in (train if split == "train" else test)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    count = 10 if name == "cifar10" else 100
    if labels.size and (labels.min() < 0 or labels.max() >= count):
        raise DataError(f"{name}: labels must lie in [0, {count}), found {labels.min()}..{labels.max()} in {folder}")
    return ArrayImages(images, labels, _cifar_classes(folder, meta_file, names_key, count), dtype)


# -- MNIST / Fashion-MNIST (IDX files) ---------------------------------------------------------

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
#: Dataset name -> (its folder in torchvision's layout, root/<folder>/raw; class names).
MNIST_LIKE = {"mnist": ("MNIST", MNIST_CLASSES), "fashion_mnist": ("FashionMNIST", FASHION_CLASSES)}


def _find_idx(root: Path, folder: str, stem: str) -> Path | None:
    # The files as distributed (gzipped or not), directly in root or in torchvision's layout.
    for directory in (root, root / "raw", root / folder / "raw"):
        for name in (stem, f"{stem}.gz"):
            if (directory / name).is_file():
                return directory / name
    return None


def read_idx(path: Path, dims: int) -> np.ndarray:
    """A uint8 IDX array with ``dims`` dimensions (the format of MNIST's files), checked."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(data) < 4 + 4 * dims:
        raise DataError(f"{path}: not an IDX file (too short)")
    zero, kind, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or kind != 0x08 or ndim != dims:
        raise DataError(f"{path}: expected an IDX file of uint8 with {dims} dimensions (header {data[:4].hex()})")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    expected = 4 + 4 * dims + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{path}: header says {shape} ({expected} bytes), the file has {len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_like(name: str, root: str, split: Split, dtype: Dtype) -> ArrayImages:
    """MNIST-format ``split`` (``name``: a key of :data:`MNIST_LIKE`) from the IDX files under ``root``."""
    folder, classes = MNIST_LIKE[name]
    base = Path(root).expanduser()
    stems = IDX_FILES[split]
    paths = [_find_idx(base, folder, stem) for stem in stems]
    if any(p is None for p in paths):
        missing = [s for s, p in zip(stems, paths, strict=True) if p is None]
        raise DataError(
            f"{folder.lower()}: no {' or '.join(missing)} (or .gz) in {base}, {base}/raw or {base}/{folder}/raw; "
            f"nothing is downloaded: put the {split} files {', '.join(stems)} there"
        )
    images_path, labels_path = paths
    assert images_path is not None and labels_path is not None
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{images_path}: {images.shape[0]} images but {labels.shape[0]} labels in {labels_path}")
    if labels.size and labels.max() >= len(classes):
        raise DataError(f"{labels_path}: labels must lie in [0, {len(classes)}), found {labels.max()}")
    return ArrayImages(images[:, None], labels, classes, dtype)
