"""The torchvision transforms v2 a recipe may name, with their arguments (torch-free).

Recipes name transforms from this table only (``{ name = "RandomResizedCrop", size = 32 }``),
never by import path, and ``runner recipe check`` validates names and argument names here
without importing torch. Every entry works on image tensors without torchvision's
compiled operators (``JPEG`` and the bounding-box transforms are left out). A test keeps
the argument names equal to torchvision's signatures.
"""

from __future__ import annotations

from typing import Any

#: Transform name -> the keyword arguments it accepts (torchvision 0.28 signatures).
V2_TRANSFORMS: dict[str, tuple[str, ...]] = {
    "AugMix": ("severity", "mixture_width", "chain_depth", "alpha", "all_ops", "interpolation", "fill"),
    "AutoAugment": ("policy", "interpolation", "fill"),
    "CenterCrop": ("size",),
    "ColorJitter": ("brightness", "contrast", "saturation", "hue"),
    "ElasticTransform": ("alpha", "sigma", "interpolation", "fill"),
    "GaussianBlur": ("kernel_size", "sigma"),
    "GaussianNoise": ("mean", "sigma", "clip"),
    "Grayscale": ("num_output_channels",),
    "Identity": (),
    "Normalize": ("mean", "std", "inplace"),
    "Pad": ("padding", "fill", "padding_mode"),
    "RGB": (),
    "RandAugment": ("num_ops", "magnitude", "num_magnitude_bins", "interpolation", "fill"),
    "RandomAdjustSharpness": ("sharpness_factor", "p"),
    "RandomAffine": ("degrees", "translate", "scale", "shear", "interpolation", "fill", "center"),
    "RandomAutocontrast": ("p",),
    "RandomChannelPermutation": (),
    "RandomCrop": ("size", "padding", "pad_if_needed", "fill", "padding_mode"),
    "RandomEqualize": ("p",),
    "RandomErasing": ("p", "scale", "ratio", "value", "inplace"),
    "RandomGrayscale": ("p",),
    "RandomHorizontalFlip": ("p",),
    "RandomInvert": ("p",),
    "RandomPerspective": ("distortion_scale", "p", "interpolation", "fill"),
    "RandomPhotometricDistort": ("brightness", "contrast", "saturation", "hue", "p"),
    "RandomPosterize": ("bits", "p"),
    "RandomResizedCrop": ("size", "scale", "ratio", "interpolation", "antialias"),
    "RandomRotation": ("degrees", "interpolation", "expand", "center", "fill"),
    "RandomSolarize": ("threshold", "p"),
    "RandomVerticalFlip": ("p",),
    "Resize": ("size", "interpolation", "max_size", "antialias"),
    "ToDtype": ("dtype", "scale"),
    "ToPureTensor": (),
    "TrivialAugmentWide": ("num_magnitude_bins", "interpolation", "fill"),
}

#: Arguments given as strings in a recipe and converted when the pipeline is built.
DTYPES = ("float32", "float16", "bfloat16", "float64", "uint8", "int64")
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic")
POLICIES = ("imagenet", "cifar10", "svhn")
CHOICES = {"dtype": DTYPES, "interpolation": INTERPOLATIONS, "policy": POLICIES}


def problems(specs: list[dict[str, Any]]) -> list[str]:
    """What is wrong with a list of transform tables (names, argument names, string choices)."""
    from runner import did_you_mean

    found: list[str] = []
    for index, spec in enumerate(specs):
        where = f"[{index}]"
        name = spec.get("name")
        if not isinstance(name, str):
            found.append(f"{where}: each transform needs name = one of torchvision's v2 transforms")
            continue
        if name not in V2_TRANSFORMS:
            hint = did_you_mean(name, V2_TRANSFORMS)
            found.append(
                f"{where}: unknown transform {name!r}"
                + (f" ({hint})" if hint else "")
                + "; allowed: the v2 transforms listed in the runner-vision README"
            )
            continue
        accepted = V2_TRANSFORMS[name]
        for key, value in spec.items():
            if key == "name":
                continue
            if key not in accepted:
                hint = did_you_mean(key, accepted)
                takes = ", ".join(accepted) or "no arguments"
                found.append(
                    f"{where}.{key}: {name} has no argument {key!r}" + (f" ({hint})" if hint else f"; it takes {takes}")
                )
            elif key in CHOICES and value not in CHOICES[key]:
                hint = did_you_mean(str(value), CHOICES[key])
                found.append(
                    f"{where}.{key}: expected one of {', '.join(map(repr, CHOICES[key]))}, found {value!r}"
                    + (f" ({hint})" if hint else "")
                )
    return found


def check_transforms(value: Any) -> str | None:
    """``runner.param`` check of the ``torchvision`` transform's ``transforms`` list."""
    found = problems(value) if isinstance(value, list) else []
    return "; ".join(found) or None
