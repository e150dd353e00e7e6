"""Components provided by known plugin distributions, to suggest what to install.

Only a hint table: nothing here is imported or trusted, and installed plugins always win.
It lists every component of every bundled plugin (tests/test_bundled_plugins.py checks it
against what they register).
"""

from __future__ import annotations

KNOWN: dict[tuple[str, str], str] = {
    # runner-callbacks
    ("callback", "early_stopping"): "runner-callbacks",
    ("callback", "ema"): "runner-callbacks",
    ("callback", "grad_norm"): "runner-callbacks",
    ("callback", "lr_monitor"): "runner-callbacks",
    ("callback", "model_summary"): "runner-callbacks",
    ("callback", "throughput"): "runner-callbacks",
    ("callback", "time_limit"): "runner-callbacks",
    # runner-checkpoint
    ("checkpointer", "default"): "runner-checkpoint",
    # runner-collates
    ("collate", "default"): "runner-collates",
    ("collate", "pad"): "runner-collates",
    ("collate", "stack_dict"): "runner-collates",
    # runner-dataserver
    ("loader", "async"): "runner-dataserver",
    # runner-datasets
    ("dataset", "arrow_shards"): "runner-datasets",
    ("dataset", "concat"): "runner-datasets",
    ("dataset", "csv"): "runner-datasets",
    ("dataset", "digits"): "runner-datasets",
    ("dataset", "generator"): "runner-datasets",
    ("dataset", "jsonl"): "runner-datasets",
    ("dataset", "list"): "runner-datasets",
    ("dataset", "processed"): "runner-datasets",
    ("dataset", "random_split"): "runner-datasets",
    ("dataset", "sequences"): "runner-datasets",
    ("dataset", "subset"): "runner-datasets",
    ("dataset", "synthetic"): "runner-datasets",
    ("dataset", "tensors"): "runner-datasets",
    ("processor", "csv_to_tensors"): "runner-datasets",
    ("transform", "map"): "runner-datasets",
    ("transform", "normalize"): "runner-datasets",
    ("transform", "prefetch"): "runner-datasets",
    ("transform", "random_noise"): "runner-datasets",
    ("transform", "shuffle_buffer"): "runner-datasets",
    # runner-ddp
    ("backend", "ddp"): "runner-ddp",
    ("backend", "fsdp"): "runner-fsdp",
    # runner-hf
    ("collate", "dynamic_padding"): "runner-hf",
    ("dataset", "hf_dataset"): "runner-hf",
    ("dataset", "tokenized"): "runner-hf",
    ("model", "transformer"): "runner-hf",
    ("processor", "tokenize"): "runner-hf",
    ("task", "causal_lm"): "runner-hf",
    ("task", "text_classification"): "runner-hf",
    # runner-mlflow
    ("logger", "mlflow"): "runner-mlflow",
    # runner-models
    ("model", "cnn"): "runner-models",
    ("model", "mlp"): "runner-models",
    ("model", "rnn"): "runner-models",
    ("optimizer", "adam"): "runner-models",
    ("optimizer", "adamw"): "runner-models",
    ("optimizer", "sgd"): "runner-models",
    ("scheduler", "constant"): "runner-models",
    ("scheduler", "cosine"): "runner-models",
    ("scheduler", "linear_warmup"): "runner-models",
    ("scheduler", "step"): "runner-models",
    ("task", "classification"): "runner-models",
    ("task", "regression"): "runner-models",
    # runner-optuna
    ("sweeper", "optuna"): "runner-optuna",
    ("sweeper", "ray"): "runner-ray",
    # runner-ray
    ("backend", "ray"): "runner-ray",
    ("executor", "ray"): "runner-ray",
    # runner-samplers
    ("sampler", "bucket_by_length"): "runner-samplers",
    ("sampler", "distributed"): "runner-samplers",
    ("sampler", "weighted"): "runner-samplers",
    # runner-tensorboard
    ("logger", "tensorboard"): "runner-tensorboard",
    # runner-vision
    ("dataset", "cifar10"): "runner-vision",
    ("dataset", "cifar100"): "runner-vision",
    ("dataset", "fashion_mnist"): "runner-vision",
    ("dataset", "image_folder"): "runner-vision",
    ("dataset", "mnist"): "runner-vision",
    ("model", "efficientnet"): "runner-vision",
    ("model", "resnet"): "runner-vision",
    ("model", "vit"): "runner-vision",
    ("transform", "torchvision"): "runner-vision",
    # runner-wandb
    ("logger", "wandb"): "runner-wandb",
}


def install_hint(kind: str, name: str) -> str:
    """``"it is provided by runner-ddp: pip install runner-ddp"`` or ``""``."""
    dist = KNOWN.get((kind, name))
    return f"it is provided by {dist}: pip install {dist}" if dist else ""
