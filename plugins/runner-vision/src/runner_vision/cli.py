"""``runner vision shapes DIR``: write a generated image folder (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("vision")
def vision_group() -> None:
    """runner-vision helpers."""


@vision_group.command("shapes")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--classes", type=click.IntRange(2, 4), default=3, show_default=True, help="Number of shape classes.")
@click.option("--train", "train", type=click.IntRange(min=1), default=60, show_default=True, help="Images per class.")
@click.option("--val", "val", type=click.IntRange(min=1), default=20, show_default=True, help="Images per class.")
@click.option("--size", type=click.IntRange(min=8), default=32, show_default=True, help="Image height and width.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the images.")
def shapes_command(directory: Path, classes: int, train: int, val: int, size: int, seed: int) -> None:
    """Write DIRECTORY/train/<shape>/*.png and DIRECTORY/val/<shape>/*.png (circle, square, ...)."""
    from runner_vision.shapes import write_shapes

    written = write_shapes(directory, classes=classes, per_class={"train": train, "val": val}, size=size, seed=seed)
    click.echo(f"{directory}: " + ", ".join(f"{split} {count} images" for split, count in written.items()))
