"""The ``torchvision`` transform: allow-list, conversions, keyed randomness, pickling."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import torch

from runner import DataError, import_torchvision
from runner_vision.allowlist import V2_TRANSFORMS, check_transforms
from runner_vision.components import Torchvision

AUGMENT = [
    {"name": "RandomResizedCrop", "size": 8, "scale": [0.3, 1.0], "interpolation": "bicubic"},
    {"name": "RandomHorizontalFlip"},
    {"name": "ColorJitter", "brightness": 0.5},
    {"name": "ToDtype", "dtype": "float32", "scale": True},
]


def image() -> torch.Tensor:
    return torch.arange(3 * 12 * 12, dtype=torch.uint8).reshape(3, 12, 12)


def keyed(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def test_allow_list_matches_torchvision() -> None:
    import_torchvision()
    from torchvision.transforms import v2

    for name, arguments in V2_TRANSFORMS.items():
        assert tuple(inspect.signature(getattr(v2, name)).parameters) == arguments, name


def test_recipe_check_messages() -> None:
    assert check_transforms(AUGMENT) is None
    message = check_transforms(
        [
            {"name": "RandomResizedCrp", "size": 8},
            {"name": "Resize", "sise": 4},
            {"name": "Resize", "interpolation": "cubic"},
        ]
    )
    assert message is not None
    assert "[0]: unknown transform 'RandomResizedCrp' (did you mean 'RandomResizedCrop'" in message
    assert "[1].sise: Resize has no argument 'sise' (did you mean 'size'?)" in message
    assert "[2].interpolation: expected one of 'nearest', 'nearest-exact', 'bilinear', 'bicubic'" in message
    assert "import" not in (check_transforms([{"name": "os.system"}]) or "")  # names only, never paths


def test_same_key_same_output_other_key_other_output() -> None:
    transform = Torchvision(transforms=AUGMENT).build()
    first = transform((image(), 1), keyed(0, 0, 5))
    again = transform((image(), 1), keyed(0, 0, 5))
    other = transform((image(), 1), keyed(0, 1, 5))
    assert first[1] == 1 and first[0].dtype == torch.float32 and first[0].shape == (3, 8, 8)
    assert torch.equal(first[0], again[0]) and not torch.equal(first[0], other[0])


def test_global_torch_generator_is_left_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    Torchvision(transforms=AUGMENT).build()(image(), keyed(0, 0, 0))
    assert torch.equal(torch.rand(3), expected)


def test_pickles_by_its_tables_and_rebuilds() -> None:
    transform = Torchvision(transforms=AUGMENT).build()
    state = pickle.dumps(transform)
    assert b"torchvision.transforms" not in state  # a spawned worker rebuilds it through the import shim
    copy = pickle.loads(state)
    assert torch.equal(copy(image(), keyed(1, 2, 3)), transform(image(), keyed(1, 2, 3)))


def test_bad_values_fail_at_build_with_the_transform_named() -> None:
    with pytest.raises(DataError, match=r"torchvision transforms\[1\] \(RandomRotation\): .*degrees"):
        Torchvision(transforms=[{"name": "RGB"}, {"name": "RandomRotation", "degrees": -3}]).build()
    with pytest.raises(DataError, match="unknown transform 'Lambda'"):
        Torchvision(transforms=[{"name": "Lambda"}]).build()


def test_field_selects_the_image() -> None:
    flip = Torchvision(transforms=[{"name": "RandomHorizontalFlip", "p": 1.0}], field=1).build()
    label, flipped = flip((7, image()), keyed(0, 0, 0))
    assert label == 7 and torch.equal(flipped, image().flip(-1))
    with pytest.raises(DataError, match="expected an image tensor or a tuple with field 1"):
        flip({"x": 1}, keyed(0, 0, 0))
