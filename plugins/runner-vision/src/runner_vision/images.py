"""Decoding images with PIL into tensors, and the ``image_folder`` dataset.

torchvision's own decoders (``torchvision.io.decode_image``...) are compiled operators, not
available everywhere (see :func:`runner.import_torchvision`); PIL decodes every common format.
Images are decoded in ``__getitem__``, i.e. in the loader worker that fetches the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from runner import DataError

#: File suffixes ``image_folder`` reads (case-insensitive); other files are ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

Mode = Literal["RGB", "L"]
Dtype = Literal["float32", "uint8"]


def to_tensor(pixels: np.ndarray, dtype: Dtype) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` uint8 pixels as a ``(C, H, W)`` tensor (float32 scaled to [0, 1])."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    return image.float().div_(255) if dtype == "float32" else image


def decode(path: Path, mode: Mode, size: Sequence[int] | None, dtype: Dtype) -> torch.Tensor:
    """The image file at ``path`` as a ``(C, H, W)`` tensor; ``size`` = ``(height, width)`` resizes it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            converted = image.convert(mode)
            if size is not None:
                converted = converted.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            pixels = np.array(converted, dtype=np.uint8)  # a writable copy: torch warns on read-only memory
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode image: {exc}") from None
    return to_tensor(pixels, dtype)


def find_images(root: Path, classes: Sequence[str] | None) -> tuple[list[str], list[tuple[Path, int]]]:
    """``(class names, [(file, class index)])`` of a folder with one subfolder per class."""
    if not root.is_dir():
        raise DataError(
            f"image_folder: {root} is not a directory; expected one subfolder per class, e.g. "
            f"{root}/cat/001.png and {root}/dog/001.png"
        )
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = list(classes) if classes else found
    missing = [c for c in names if c not in found]
    if missing:
        raise DataError(f"image_folder: {root} has no class folder {', '.join(map(repr, missing))} (found {found})")
    if not names:
        raise DataError(f"image_folder: {root} has no class subfolders; expected e.g. {root}/cat/001.png")
    samples: list[tuple[Path, int]] = []
    for index, name in enumerate(names):
        files = sorted(
            p
            for p in (root / name).rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        if not files:
            raise DataError(f"image_folder: class folder {root / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        samples += [(path, index) for path in files]
    return names, samples


class ImageFolder(Dataset[tuple[torch.Tensor, int]]):
    """``(image, class index)`` samples from ``root/<class>/<file>``; classes in sorted order
    unless ``classes`` names them (give it to every split, so indices agree)."""

    def __init__(
        self,
        root: Path,
        classes: Sequence[str] | None,
        mode: Mode,
        image_size: Sequence[int] | None,
        dtype: Dtype,
    ) -> None:
        self.root = root
        self.classes, self.samples = find_images(root, classes)
        self.mode: Mode = mode
        self.image_size = tuple(image_size) if image_size else None
        self.dtype: Dtype = dtype
        self.meta: dict[str, Any] = {
            "num_classes": len(self.classes),
            "classes": list(self.classes),
            "in_channels": 3 if mode == "RGB" else 1,
        }
        if self.image_size:
            self.meta["image_size"] = list(self.image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return decode(path, self.mode, self.image_size, self.dtype), label


def image_size_pair(value: int | Sequence[int] | None) -> tuple[int, int] | None:
    """``32`` or ``[32, 48]`` as ``(height, width)``."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if len(value) != 2:
        raise DataError(f"image_size: expected one size or [height, width], found {list(value)}")
    return (int(value[0]), int(value[1]))
