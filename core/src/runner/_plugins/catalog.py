"""Components provided by known plugin distributions, to suggest what to install.

Only a hint table: nothing here is imported or trusted, and installed plugins always win.
"""

from __future__ import annotations

KNOWN: dict[tuple[str, str], str] = {
    ("backend", "ddp"): "runner-ddp",
    ("backend", "ray"): "runner-ray",
    ("executor", "ray"): "runner-ray",
    ("sweeper", "ray"): "runner-ray",
    ("sweeper", "optuna"): "runner-optuna",
    ("checkpointer", "default"): "runner-checkpoint",
    ("logger", "tensorboard"): "runner-tensorboard",
    ("logger", "mlflow"): "runner-mlflow",
    ("logger", "wandb"): "runner-wandb",
    ("dataset", "digits"): "runner-datasets",
    ("dataset", "synthetic"): "runner-datasets",
    ("dataset", "csv"): "runner-datasets",
    ("dataset", "jsonl"): "runner-datasets",
    ("dataset", "tensors"): "runner-datasets",
    ("model", "mlp"): "runner-models",
    ("model", "cnn"): "runner-models",
    ("task", "classification"): "runner-models",
    ("task", "regression"): "runner-models",
    ("optimizer", "adamw"): "runner-models",
    ("optimizer", "adam"): "runner-models",
    ("optimizer", "sgd"): "runner-models",
    ("collate", "pad"): "runner-collates",
    ("sampler", "weighted"): "runner-samplers",
    ("loader", "async"): "runner-dataserver",
    ("dataset", "image_folder"): "runner-vision",
    ("dataset", "cifar10"): "runner-vision",
    ("dataset", "cifar100"): "runner-vision",
    ("dataset", "mnist"): "runner-vision",
    ("dataset", "fashion_mnist"): "runner-vision",
    ("transform", "torchvision"): "runner-vision",
    ("model", "resnet"): "runner-vision",
    ("model", "efficientnet"): "runner-vision",
    ("model", "vit"): "runner-vision",
    ("dataset", "hf_dataset"): "runner-hf",
    ("dataset", "tokenized"): "runner-hf",
    ("processor", "tokenize"): "runner-hf",
    ("collate", "dynamic_padding"): "runner-hf",
    ("model", "transformer"): "runner-hf",
    ("task", "text_classification"): "runner-hf",
    ("task", "causal_lm"): "runner-hf",
}


def install_hint(kind: str, name: str) -> str:
    """``"it is provided by runner-ddp: pip install runner-ddp"`` or ``""``."""
    dist = KNOWN.get((kind, name))
    return f"it is provided by {dist}: pip install {dist}" if dist else ""
