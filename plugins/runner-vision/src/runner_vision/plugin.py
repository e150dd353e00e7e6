"""Entry module of the ``runner-vision`` plugin (entry point ``vision``): registers its components by name.

Imports neither torch nor torchvision: factories and parameter classes are lazy references.
"""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl

_PARAMS = "runner_vision.params"


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register ``image_folder``, ``cifar10``, ``cifar100``, ``mnist`` and ``fashion_mnist``."""
    register(
        "image_folder",
        "runner_vision.images:image_folder",
        params=f"{_PARAMS}:ImageFolderParams",
        doc="Images in one subfolder per class, decoded with PIL in loader workers.",
    )
    for name, doc in (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100")):
        register(
            name,
            f"runner_vision.arrays:{name}",
            params=f"{_PARAMS}:CifarParams",
            doc=f"{doc} from the python batches in a local folder (no download, no arbitrary unpickling).",
        )
    for name, doc in (("mnist", "MNIST"), ("fashion_mnist", "Fashion-MNIST")):
        register(
            name,
            f"runner_vision.arrays:{name}",
            params=f"{_PARAMS}:MnistParams",
            doc=f"{doc} from local IDX files (no download).",
        )


@hookimpl
def register_transforms(register: RegisterComponent) -> None:
    """Register ``torchvision``."""
    register(
        "torchvision",
        "runner_vision.transforms:build",
        params=f"{_PARAMS}:TorchvisionParams",
        doc="A torchvision transforms v2 pipeline from an allow-list, randomness keyed per sample.",
    )


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``resnet``, ``efficientnet`` and ``vit``."""
    for name, params, doc in (
        ("resnet", "ResNetParams", "torchvision ResNet by depth."),
        ("efficientnet", "EfficientNetParams", "torchvision EfficientNet by variant."),
        ("vit", "ViTParams", "torchvision Vision Transformer by variant."),
    ):
        register(name, f"runner_vision.models:{name}", params=f"{_PARAMS}:{params}", doc=doc)


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner vision`` (helpers: ``runner vision shapes DIR``)."""
    register("vision", "runner_vision.cli:vision_group", help="runner-vision helpers: generate an image folder.")
