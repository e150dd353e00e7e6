"""Files in the formats runner-vision reads, written by the tests (nothing is downloaded)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_image_folder(root: Path, classes: dict[str, int], size: int = 8) -> Path:
    """``root/<class>/<i>.png``: solid images whose red channel is 40 * class index."""
    for label, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = np.zeros((size, size, 3), dtype=np.uint8)
            pixels[..., 0] = 40 * label
            pixels[..., 1] = index
            Image.fromarray(pixels, "RGB").save(root / name / f"{index}.png")
    return root


def write_cifar(root: Path, name: str = "cifar10", per_batch: int = 4, protocol: int = 2) -> Path:
    """A CIFAR folder of tiny batches with the real file names and keys."""
    if name == "cifar10":
        folder, files, key, meta_file, names_key, count = (
            root / "cifar-10-batches-py",
            [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"],
            "labels",
            "batches.meta",
            "label_names",
            10,
        )
    else:
        folder, files, key, meta_file, names_key, count = (
            root / "cifar-100-python",
            ["train", "test"],
            "fine_labels",
            "meta",
            "fine_label_names",
            100,
        )
    folder.mkdir(parents=True, exist_ok=True)
    for number, file in enumerate(files):
        data = np.full((per_batch, 3072), number, dtype=np.uint8)
        batch = {"batch_label": file, key: [(number + i) % count for i in range(per_batch)], "data": data}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=protocol))
    (folder / meta_file).write_bytes(pickle.dumps({names_key: [f"class{i}" for i in range(count)]}, protocol=protocol))
    return root


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """``array`` (uint8) as an IDX file, as MNIST distributes them."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_mnist(root: Path, count: int = 6, compress: bool = False) -> Path:
    for prefix in ("train", "t10k"):
        images = np.arange(count * 28 * 28, dtype=np.int64).reshape(count, 28, 28) % 256
        write_idx(root / f"{prefix}-images-idx3-ubyte", images.astype(np.uint8), compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(count, dtype=np.uint8) % 10, compress)
    return root
