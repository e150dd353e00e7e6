"""Recipe parameters of runner-vision's components, as attrs classes (torch-free).

Field names and defaults match the factories' keyword arguments (a test checks it).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from runner import at_least, param
from runner_vision.allowlist import check_transforms


def _image_size(value: Any) -> str | None:
    if value is None or isinstance(value, int):
        return None if value is None or value >= 1 else f"must be at least 1, found {value}"
    if len(value) != 2 or min(value) < 1:
        return f"expected one size or [height, width] of positive sizes, found {value}"
    return None


def _nonempty(value: Any) -> str | None:
    return None if value else "must name at least one transform"


DTYPE_DOC = "float32 (scaled to [0, 1]) or uint8 (0-255) images."
ROOT_DOC = "Folder holding the files (read from the working directory when relative); nothing is downloaded."


@attrs.define
class ImageFolderParams:
    """Images in one subfolder per class (root/cat/1.png, root/dog/2.jpg), decoded with PIL in loader workers."""

    root: str = param(doc="Folder with one subfolder per class.")
    classes: list[str] | None = param(
        None, doc="Class folders in label order (default: every subfolder, sorted); give every split the same list."
    )
    mode: Literal["RGB", "L"] = param("RGB", doc="Decode as RGB (3 channels) or L (grayscale, 1 channel).")
    image_size: int | list[int] | None = param(
        None, doc="Resize when decoding to this size or [height, width] (default: as stored).", check=_image_size
    )
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC)


@attrs.define
class CifarParams:
    """CIFAR from its python batches (cifar-10-batches-py/ or cifar-100-python/), read without arbitrary unpickling."""

    root: str = param(doc=ROOT_DOC)
    split: Literal["train", "test"] = param(doc="train (50000 images) or test (10000).")
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC + " uint8 keeps the batched fast path.")


@attrs.define
class MnistParams:
    """MNIST-format IDX files (train-images-idx3-ubyte, ...; gzipped or not)."""

    root: str = param(doc=ROOT_DOC + " Also looked for in root/raw and torchvision's root/<Name>/raw.")
    split: Literal["train", "test"] = param(doc="train (60000 images) or test (10000).")
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC + " uint8 keeps the batched fast path.")


@attrs.define
class TorchvisionParams:
    """A torchvision transforms v2 pipeline, e.g. [{ name = "RandomResizedCrop", size = 32 }]."""

    transforms: list[dict[str, Any]] = param(
        doc="Allow-listed v2 transforms in order: name and keyword arguments (dtype, interpolation, policy: strings).",
        check=lambda value: _nonempty(value) or check_transforms(value),
    )
    field: int = param(0, doc="Which field of each sample is the image.", check=at_least(0))


FREEZE_DOC = 'Stop gradients: "backbone" (all but the classifier head) or a list of module-name prefixes.'
WEIGHTS_DOC = "Local state dict to start from (.safetensors, .pt, .pth, .npz); a head of another shape is replaced."
CLASSES_DOC = "Outputs (default: num_classes from the training dataset's meta)."


@attrs.define
class ResNetParams:
    """torchvision ResNet (resnet18 ... resnet152)."""

    size: Literal[18, 34, 50, 101, 152] = param(18, doc="Depth.")
    num_classes: int | None = param(None, doc=CLASSES_DOC, check=at_least(1))
    weights_path: str | None = param(None, doc=WEIGHTS_DOC)
    freeze: Literal["backbone"] | list[str] = param([], doc=FREEZE_DOC)


@attrs.define
class EfficientNetParams:
    """torchvision EfficientNet (b0 ... b7, v2_s, v2_m, v2_l)."""

    size: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "v2_s", "v2_m", "v2_l"] = param("b0", doc="Variant.")
    num_classes: int | None = param(None, doc=CLASSES_DOC, check=at_least(1))
    weights_path: str | None = param(None, doc=WEIGHTS_DOC)
    freeze: Literal["backbone"] | list[str] = param([], doc=FREEZE_DOC)


@attrs.define
class ViTParams:
    """torchvision Vision Transformer (b_16, b_32, l_16, l_32, h_14), any dimension overridable."""

    size: Literal["b_16", "b_32", "l_16", "l_32", "h_14"] = param("b_16", doc="Variant.")
    num_classes: int | None = param(None, doc=CLASSES_DOC, check=at_least(1))
    image_size: int | None = param(
        None, doc="Input height and width (default: the dataset's meta image_size, else 224).", check=at_least(1)
    )
    patch_size: int | None = param(None, doc="Override the variant's patch size.", check=at_least(1))
    num_layers: int | None = param(None, doc="Override the number of encoder layers.", check=at_least(1))
    num_heads: int | None = param(None, doc="Override the number of attention heads.", check=at_least(1))
    hidden_dim: int | None = param(None, doc="Override the embedding width.", check=at_least(1))
    mlp_dim: int | None = param(None, doc="Override the MLP width.", check=at_least(1))
    weights_path: str | None = param(None, doc=WEIGHTS_DOC)
    freeze: Literal["backbone"] | list[str] = param([], doc=FREEZE_DOC)
