"""resnet, efficientnet, vit: sizes from meta, local weights with head replacement, freezing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from runner import BuildContext, DataError
from runner_vision.components import EfficientNet, ResNet, ViT

TINY_VIT = {"patch_size": 8, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}


class Data:
    meta = {"num_classes": 3, "image_size": [16, 16]}


def ctx(tmp_path: Path) -> BuildContext:
    return BuildContext(recipe=None, seed=0, run_dir=tmp_path, train_dataset=Data())  # type: ignore[arg-type]


def test_num_classes_and_image_size_come_from_meta(tmp_path: Path) -> None:
    model = ViT(**TINY_VIT).build(ctx(tmp_path))  # type: ignore[arg-type]
    assert model(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    assert ResNet().build(ctx(tmp_path)).fc.out_features == 3
    assert EfficientNet(num_classes=5).build().classifier[1].out_features == 5
    with pytest.raises(DataError, match="set num_classes"):
        ResNet().build()
    with pytest.raises(DataError, match="image_size 16 is not a multiple of patch_size 5"):
        ViT(**{**TINY_VIT, "patch_size": 5}).build(ctx(tmp_path))  # type: ignore[arg-type]


def pretrained(tmp_path: Path, suffix: str = ".safetensors") -> tuple[Path, dict[str, torch.Tensor]]:
    """A 1000-class resnet18 state dict, as torchvision's ImageNet weights are."""
    torch.manual_seed(1)
    state = ResNet(num_classes=1000).build().state_dict()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    return path, state


@pytest.mark.slow  # takes seconds
@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_load_and_a_head_of_another_size_is_replaced(tmp_path: Path, suffix: str) -> None:
    path, state = pretrained(tmp_path, suffix)
    model = ResNet(weights_path=str(path)).build(ctx(tmp_path))
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.fc.weight.shape == (3, 512)


@pytest.mark.slow  # takes seconds
def test_weights_of_another_architecture_are_one_clear_error(tmp_path: Path) -> None:
    path, _ = pretrained(tmp_path)
    with pytest.raises(
        DataError, match=r"does not fit this architecture \(.*unexpected: layer1\.0\.conv3\.weight|missing"
    ):
        ResNet(size=50, num_classes=3, weights_path=str(path)).build()
    with pytest.raises(DataError, match="does not exist"):
        ResNet(num_classes=3, weights_path=str(tmp_path / "nope.pt")).build()


def trainable(model: torch.nn.Module) -> set[str]:
    return {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}


def test_freeze_backbone_trains_only_the_head_and_keeps_batchnorm_statistics(tmp_path: Path) -> None:
    model = ResNet(num_classes=3, freeze="backbone").build()
    assert trainable(model) == {"fc"}
    before = model.bn1.running_mean.clone()
    model.train()
    model(torch.rand(4, 3, 32, 32) * 5).sum().backward()
    assert torch.equal(model.bn1.running_mean, before) and model.conv1.weight.grad is None
    assert model.fc.weight.grad is not None


@pytest.mark.slow  # takes seconds
def test_freeze_by_prefix(tmp_path: Path) -> None:
    model: Any = ResNet(num_classes=3, freeze=["conv1", "layer1"]).build()
    assert trainable(model) == {"bn1", "layer2", "layer3", "layer4", "fc"}
    model.train()
    before = model.layer2[0].bn1.running_mean.clone()
    model(torch.rand(2, 3, 32, 32))
    assert not torch.equal(model.layer2[0].bn1.running_mean, before)  # not frozen: statistics still update
    with pytest.raises(DataError, match=r"freeze: no parameters under \['layer9'\]; top-level modules: bn1, conv1"):
        ResNet(num_classes=3, freeze=["layer9"]).build()
