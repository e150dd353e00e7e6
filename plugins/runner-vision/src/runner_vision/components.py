"""Every component of runner-vision, each declared once: fields are the recipe parameters,
the docstring the documentation, ``build`` makes the object.

Torch-free, so ``runner recipe check`` validates recipes without torch or torchvision:
each ``build`` imports the module that does the work (:mod:`runner_vision.images`,
:mod:`~runner_vision.arrays`, :mod:`~runner_vision.transforms`, :mod:`~runner_vision.models`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from runner import at_least, check, component, param
from runner_vision.allowlist import check_transforms

if TYPE_CHECKING:
    from torch import nn

    from runner import BuildContext
    from runner_vision import arrays, images, transforms

# -- datasets --------------------------------------------------------------------------------

DTYPE_DOC = "float32 (scaled to [0, 1]) or uint8 (0-255) images."
ROOT_DOC = "Folder holding the files (read from the working directory when relative); nothing is downloaded."


def one_or_two_sizes(value: Any) -> str | None:
    """Constraint: one size or ``[height, width]``, every size at least 1 (None allowed)."""
    if value is None or isinstance(value, int):
        return None if value is None or value >= 1 else f"must be at least 1, found {value}"
    if len(value) != 2 or min(value) < 1:
        return f"expected one size or [height, width] of positive sizes, found {value}"
    return None


@component
class ImageFolder:
    """Images in one subfolder per class, decoded with PIL in loader workers.

    root/cat/1.png, root/dog/2.jpg, ...: a sample's label is the index of its folder in
    classes (default: every subfolder, sorted).
    """

    root: str = param(doc="Folder with one subfolder per class.")
    classes: list[str] | None = param(
        None, doc="Class folders in label order (default: every subfolder, sorted); give every split the same list."
    )
    mode: Literal["RGB", "L"] = param("RGB", doc="Decode as RGB (3 channels) or L (grayscale, 1 channel).")
    image_size: int | list[int] | None = param(
        None, doc="Resize when decoding to this size or [height, width] (default: as stored).", check=one_or_two_sizes
    )
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC)

    def build(self) -> images.ImageFolder:
        from pathlib import Path

        from runner_vision import images

        size = images.image_size_pair(self.image_size)
        return images.ImageFolder(Path(self.root).expanduser(), self.classes, self.mode, size, self.dtype)


@component
class Cifar10:
    """CIFAR-10 from the python batches in a local folder (no download, no arbitrary unpickling).

    The python version as extracted from its archive: a cifar-10-batches-py folder in
    root, or its files in root itself.
    """

    #: Which CIFAR (a key of :data:`runner_vision.arrays.CIFAR`); not a recipe parameter.
    variant: ClassVar[str] = "cifar10"

    root: str = param(doc=ROOT_DOC)
    split: Literal["train", "test"] = param(doc="train (50000 images) or test (10000).")
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC + " uint8 keeps the batched fast path.")

    def build(self) -> arrays.ArrayImages:
        from runner_vision import arrays

        return arrays.cifar(self.variant, self.root, self.split, self.dtype)


@component
class Cifar100(Cifar10):
    """CIFAR-100 from the python batches in a local folder (no download, no arbitrary unpickling).

    The python version as extracted from its archive: a cifar-100-python folder in root,
    or its files in root itself. Labels are the 100 fine labels.
    """

    variant: ClassVar[str] = "cifar100"


@component
class Mnist:
    """MNIST from local IDX files (no download).

    The files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
    and t10k-labels-idx1-ubyte, gzipped or not.
    """

    #: Which dataset (a key of :data:`runner_vision.arrays.MNIST_LIKE`); not a recipe parameter.
    variant: ClassVar[str] = "mnist"

    root: str = param(doc=ROOT_DOC + " Also looked for in root/raw and torchvision's root/<Name>/raw.")
    split: Literal["train", "test"] = param(doc="train (60000 images) or test (10000).")
    dtype: Literal["float32", "uint8"] = param("float32", doc=DTYPE_DOC + " uint8 keeps the batched fast path.")

    def build(self) -> arrays.ArrayImages:
        from runner_vision import arrays

        return arrays.mnist_like(self.variant, self.root, self.split, self.dtype)


@component
class FashionMnist(Mnist):
    """Fashion-MNIST from local IDX files (no download).

    The same files as MNIST's (train-images-idx3-ubyte, ...), gzipped or not; torchvision
    keeps them in root/FashionMNIST/raw.
    """

    variant: ClassVar[str] = "fashion_mnist"


# -- transforms ------------------------------------------------------------------------------


def transform_list(value: Any) -> str | None:
    """Constraint: at least one allow-listed transform, with the arguments it accepts."""
    return "must name at least one transform" if not value else check_transforms(value)


@component
class Torchvision:
    """A torchvision transforms v2 pipeline from an allow-list, randomness keyed per sample.

    For example transforms = [{ name = "RandomResizedCrop", size = 32 }].
    """

    transforms: list[dict[str, Any]] = param(
        doc="Allow-listed v2 transforms in order: name and keyword arguments (dtype, interpolation, policy: strings).",
        check=transform_list,
    )
    field: int = param(0, doc="Which field of each sample is the image.", check=at_least(0))

    def build(self) -> transforms.TorchvisionTransform:
        from runner_vision import transforms

        return transforms.TorchvisionTransform(self.transforms, self.field)


# -- models ----------------------------------------------------------------------------------

FREEZE_DOC = 'Stop gradients: "backbone" (all but the classifier head) or a list of module-name prefixes.'
WEIGHTS_DOC = "Local state dict to start from (.safetensors, .pt, .pth, .npz); a head of another shape is replaced."
CLASSES_DOC = "Outputs (default: num_classes from the training dataset's meta)."


@component
class ResNet:
    """torchvision ResNet by depth.

    torchvision.models.resnet18 ... resnet152, randomly initialised unless weights_path
    names a local state dict.
    """

    size: Literal[18, 34, 50, 101, 152] = param(18, doc="Depth.")
    num_classes: int | None = param(None, doc=CLASSES_DOC, check=at_least(1))
    weights_path: str | None = param(None, doc=WEIGHTS_DOC)
    freeze: Literal["backbone"] | list[str] = param([], doc=FREEZE_DOC)

    def build(self, ctx: BuildContext | None = None) -> nn.Module:
        from runner_vision import models

        return models.resnet(
            size=self.size, num_classes=self.num_classes, weights_path=self.weights_path, freeze=self.freeze, ctx=ctx
        )


@component
class EfficientNet:
    """torchvision EfficientNet by variant.

    torchvision.models.efficientnet_b0 ... b7, v2_s, v2_m, v2_l, randomly initialised
    unless weights_path names a local state dict.
    """

    size: Literal["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "v2_s", "v2_m", "v2_l"] = param("b0", doc="Variant.")
    num_classes: int | None = param(None, doc=CLASSES_DOC, check=at_least(1))
    weights_path: str | None = param(None, doc=WEIGHTS_DOC)
    freeze: Literal["backbone"] | list[str] = param([], doc=FREEZE_DOC)

    def build(self, ctx: BuildContext | None = None) -> nn.Module:
        from runner_vision import models

        return models.efficientnet(
            size=self.size, num_classes=self.num_classes, weights_path=self.weights_path, freeze=self.freeze, ctx=ctx
        )


#: torchvision's ViT variants: ``(patch_size, num_layers, num_heads, hidden_dim, mlp_dim)``.
VIT_SIZES = {
    "b_16": (16, 12, 12, 768, 3072),
    "b_32": (32, 12, 12, 768, 3072),
    "l_16": (16, 24, 16, 1024, 4096),
    "l_32": (32, 24, 16, 1024, 4096),
    "h_14": (14, 32, 16, 1280, 5120),
}
VIT_DIMS = ("patch_size", "num_layers", "num_heads", "hidden_dim", "mlp_dim")


@component
class ViT:
    """torchvision Vision Transformer by variant.

    Variants b_16, b_32, l_16, l_32, h_14; any of the variant's dimensions can be
    overridden (a tiny ViT for small images: patch_size = 8, num_layers = 2, ...).
    image_size must be a multiple of the patch size, hidden_dim of num_heads.
    """

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

    def dim(self, name: str) -> int:
        """Dimension ``name`` (one of :data:`VIT_DIMS`): the recipe's, else the variant's."""
        value: int | None = getattr(self, name)
        return VIT_SIZES[self.size][VIT_DIMS.index(name)] if value is None else value

    def _described(self, name: str) -> str:
        # "patch_size 16 (size b_16's)" when the value comes from the variant, not the recipe.
        return f"{name} {self.dim(name)}" + (f" (size {self.size}'s)" if getattr(self, name) is None else "")

    @check("image_size", "patch_size", "size")
    def _patches_tile_the_image(self) -> str | None:
        # An unset image_size comes from the data's meta: that one is checked when the model is built.
        if self.image_size is None or self.image_size % self.dim("patch_size") == 0:
            return None
        return f"image_size {self.image_size} is not a multiple of {self._described('patch_size')}"

    @check("hidden_dim", "num_heads", "size")
    def _heads_split_the_width(self) -> str | None:
        if self.dim("hidden_dim") % self.dim("num_heads") == 0:
            return None
        return f"{self._described('hidden_dim')} is not a multiple of {self._described('num_heads')}"

    def build(self, ctx: BuildContext | None = None) -> nn.Module:
        from runner_vision import models

        return models.vit(
            **{name: self.dim(name) for name in VIT_DIMS},
            image_size=self.image_size,
            num_classes=self.num_classes,
            weights_path=self.weights_path,
            freeze=self.freeze,
            ctx=ctx,
        )
