"""Entry module of the ``runner-vision`` plugin (entry point ``vision``): registers its components by name.

Imports nothing heavy: every component is a lazy ``module:attr`` reference to its
declaration in :mod:`runner_vision.components`, so ``runner --help`` builds no class and
neither torch nor torchvision is imported before a run builds something.
"""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl

_COMPONENTS = "runner_vision.components"
_DATASETS = {
    "image_folder": "ImageFolder",
    "cifar10": "Cifar10",
    "cifar100": "Cifar100",
    "mnist": "Mnist",
    "fashion_mnist": "FashionMnist",
}
_MODELS = {"resnet": "ResNet", "efficientnet": "EfficientNet", "vit": "ViT"}


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register ``image_folder``, ``cifar10``, ``cifar100``, ``mnist`` and ``fashion_mnist``."""
    for name, declaration in _DATASETS.items():
        register(name, f"{_COMPONENTS}:{declaration}")


@hookimpl
def register_transforms(register: RegisterComponent) -> None:
    """Register ``torchvision``."""
    register("torchvision", f"{_COMPONENTS}:Torchvision")


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``resnet``, ``efficientnet`` and ``vit``."""
    for name, declaration in _MODELS.items():
        register(name, f"{_COMPONENTS}:{declaration}")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner vision`` (helpers: ``runner vision shapes DIR``)."""
    register("vision", "runner_vision.cli:vision_group", help="runner-vision helpers: generate an image folder.")
