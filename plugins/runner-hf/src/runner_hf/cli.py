"""``runner hf demo-data DIR``: write a small text classification dataset and its tokenizer."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("hf")
def hf_group() -> None:
    """runner-hf helpers."""


@hf_group.command("demo-data")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", type=click.IntRange(min=3), default=600, show_default=True, help="Training rows.")
@click.option("--val", type=click.IntRange(min=3), default=150, show_default=True, help="Validation rows.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sentences.")
def demo_data_command(directory: Path, train: int, val: int, seed: int) -> None:
    """Write DIRECTORY/train.jsonl, DIRECTORY/val.jsonl (text, label: 3 topics) and DIRECTORY/tokenizer.json."""
    from runner_hf.demo import write_demo

    counts = write_demo(directory, train=train, val=val, seed=seed)
    click.echo(f"{directory}: train {counts['train']} rows, val {counts['val']} rows, tokenizer.json")
