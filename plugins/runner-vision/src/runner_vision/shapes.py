"""Generated image folders of simple shapes, for trying recipes and for tests (PIL and numpy only).

``runner vision shapes DIR`` writes ``DIR/train/<shape>/*.png`` and ``DIR/val/<shape>/*.png``:
one class per shape (circle, square, triangle, ...), each drawn at a random position,
size and colour on a noisy background. The images depend only on the arguments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross")
SPLITS = {"train": 0, "val": 1, "test": 2}


def draw(shape: str, size: int, rng: np.random.Generator) -> object:
    """One RGB ``size`` x ``size`` PIL image of ``shape``."""
    from PIL import Image, ImageDraw

    background = rng.integers(0, 80, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    pen = ImageDraw.Draw(image)
    colour = tuple(int(c) for c in rng.integers(120, 256, size=3))
    radius = size * rng.uniform(0.22, 0.38)
    cx, cy = (size / 2 + rng.uniform(-0.12, 0.12, size=2) * size).tolist()
    if shape == "circle":
        pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "square":
        pen.rectangle((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
    elif shape == "triangle":
        pen.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    elif shape == "cross":
        bar = radius / 3
        pen.rectangle((cx - radius, cy - bar, cx + radius, cy + bar), fill=colour)
        pen.rectangle((cx - bar, cy - radius, cx + bar, cy + radius), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {', '.join(SHAPES)}")
    return image


def write_shapes(
    root: Path,
    *,
    classes: int = 3,
    per_class: dict[str, int] | None = None,
    size: int = 32,
    seed: int = 0,
) -> dict[str, int]:
    """Write the image folder; returns the number of images per split."""
    if not 2 <= classes <= len(SHAPES):
        raise ValueError(f"classes must be between 2 and {len(SHAPES)}, found {classes}")
    counts = per_class or {"train": 60, "val": 20}
    written: dict[str, int] = {}
    for split, count in counts.items():
        for label, shape in enumerate(SHAPES[:classes]):
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng([seed, SPLITS.get(split, 3), label])
            for index in range(count):
                draw(shape, size, rng).save(folder / f"{index:05d}.png")  # type: ignore[attr-defined]
        written[split] = count * classes
    return written
