"""torchvision architectures by name and size: ``resnet``, ``efficientnet``, ``vit``.

``num_classes`` comes from ``ctx.meta`` unless the recipe sets it. ``weights_path`` loads
a local state dict (``.safetensors``, ``.pt``/``.pth`` read with ``weights_only``, or
``.npz``); its classifier head is dropped when its shape differs, so ImageNet weights
fine-tune on any number of classes. ``freeze`` stops gradients of the backbone or of
named submodules; frozen BatchNorm layers keep their running statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from runner import BuildContext, DataError, import_torchvision, load_tensor_file

#: The parameter-name prefix of each family's classifier head (replaced, never frozen by "backbone").
HEADS = {"resnet": "fc.", "efficientnet": "classifier.", "vit": "heads."}


def _num_classes(num_classes: int | None, ctx: BuildContext | None, family: str) -> int:
    if num_classes is not None:
        return num_classes
    found = (ctx.meta if ctx is not None else {}).get("num_classes")
    if not isinstance(found, int):
        raise DataError(f"{family}: set num_classes (the training dataset's meta does not give num_classes)")
    return found


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise DataError(f"weights_path: {path} does not exist (a state dict file: .safetensors, .pt, .pth or .npz)")
    loaded: Any
    if path.suffix.lower() in (".pt", ".pth"):
        try:  # weights_only: tensors and plain containers, never arbitrary objects
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(f"weights_path: {path}: cannot load: {type(exc).__name__}: {exc}") from None
    else:
        loaded = load_tensor_file(path)
    if not isinstance(loaded, Mapping):
        raise DataError(f"weights_path: {path} holds a {type(loaded).__name__}, not a state dict")
    for key in ("state_dict", "model"):  # common checkpoint wrappers
        if isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
    state = {str(k).removeprefix("module."): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise DataError(f"weights_path: {path} holds no tensors")
    return state


def load_weights(model: nn.Module, path: Path, head: str) -> None:
    """Load the state dict at ``path``; a head of another shape is left freshly initialised."""
    state = _state_dict(path)
    own = model.state_dict()
    dropped = [k for k in state if k.startswith(head) and k in own and state[k].shape != own[k].shape]
    for key in dropped:
        del state[key]
    mismatched = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    unexpected = [k for k in state if k not in own]
    # num_batches_tracked is absent from many published state dicts and harmless to lack.
    missing = [k for k in own if k not in state and k not in dropped and not k.endswith("num_batches_tracked")]
    if mismatched or unexpected or missing:
        details = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("shape mismatch", mismatched), ("unexpected", unexpected), ("missing", missing))
            if keys
        )
        raise DataError(f"weights_path: {path} does not fit this architecture ({details})")
    model.load_state_dict(state, strict=False)


def _keep_statistics(module: nn.Module, args: Any) -> None:
    module.train(False)  # a frozen BatchNorm normalises with its running statistics


def freeze_parameters(model: nn.Module, spec: str | Sequence[str], head: str) -> None:
    """Stop gradients of the backbone (everything but ``head``) or of the named submodule prefixes."""
    if not spec:
        return
    names = [n for n, _ in model.named_parameters()]
    if spec == "backbone":
        frozen = {n for n in names if not n.startswith(head)}
        prefixes: list[str] = []
    else:
        prefixes = [spec] if isinstance(spec, str) else list(spec)
        unmatched = [p for p in prefixes if not any(n == p or n.startswith(p.rstrip(".") + ".") for n in names)]
        if unmatched:
            tops = sorted({n.split(".")[0] for n in names})
            raise DataError(f"freeze: no parameters under {unmatched}; top-level modules: {', '.join(tops)}")
        frozen = {n for n in names if any(n == p or n.startswith(p.rstrip(".") + ".") for p in prefixes)}
    for name, parameter in model.named_parameters():
        if name in frozen:
            parameter.requires_grad_(False)
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and all(
            f"{name}.{p}" in frozen for p, _ in module.named_parameters(recurse=False)
        ):
            module.register_forward_pre_hook(_keep_statistics)


def _finish(model: nn.Module, family: str, weights_path: str | None, freeze_spec: str | Sequence[str]) -> nn.Module:
    if weights_path:
        load_weights(model, Path(weights_path).expanduser(), HEADS[family])
    freeze_parameters(model, freeze_spec, HEADS[family])
    return model


def resnet(
    *,
    size: int,
    num_classes: int | None,
    weights_path: str | None,
    freeze: str | Sequence[str],
    ctx: BuildContext | None,
) -> nn.Module:
    """torchvision's ``resnet{size}`` (declared by :class:`runner_vision.components.ResNet`)."""
    models = import_torchvision().models
    model = getattr(models, f"resnet{size}")(weights=None, num_classes=_num_classes(num_classes, ctx, "resnet"))
    return _finish(model, "resnet", weights_path, freeze)


def efficientnet(
    *,
    size: str,
    num_classes: int | None,
    weights_path: str | None,
    freeze: str | Sequence[str],
    ctx: BuildContext | None,
) -> nn.Module:
    """torchvision's ``efficientnet_{size}`` (declared by :class:`runner_vision.components.EfficientNet`)."""
    models = import_torchvision().models
    classes = _num_classes(num_classes, ctx, "efficientnet")
    model = getattr(models, f"efficientnet_{size}")(weights=None, num_classes=classes)
    return _finish(model, "efficientnet", weights_path, freeze)


def vit(
    *,
    image_size: int | None,
    patch_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    num_classes: int | None,
    weights_path: str | None,
    freeze: str | Sequence[str],
    ctx: BuildContext | None,
) -> nn.Module:
    """torchvision's ``VisionTransformer`` of these dimensions (declared by
    :class:`runner_vision.components.ViT`, which resolves a variant's and checks them).

    ``image_size`` None is the training dataset's meta ``image_size``, else 224; only that
    one can be checked here, not when the recipe is.
    """
    VisionTransformer = import_torchvision().models.VisionTransformer
    if image_size is None:
        meta_size = (ctx.meta if ctx is not None else {}).get("image_size")
        image_size = int(meta_size[0]) if isinstance(meta_size, list) and meta_size else 224
    if image_size % patch_size:
        raise DataError(f"vit: image_size {image_size} is not a multiple of patch_size {patch_size}")
    model = VisionTransformer(
        image_size=image_size,
        patch_size=patch_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        mlp_dim=mlp_dim,
        num_classes=_num_classes(num_classes, ctx, "vit"),
    )
    return _finish(model, "vit", weights_path, freeze)
