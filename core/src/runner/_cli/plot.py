"""``runner plot RUN_DIR... [--metric NAME]... [-o curves.png]``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plot")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-m",
    "--metric",
    "metrics",
    multiple=True,
    metavar="NAME",
    help="Metric to draw (loss, accuracy, lr, ...). Repeatable.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("curves.png"),
    show_default=True,
    help="PNG file to write.",
)
@click.option("--dpi", type=click.IntRange(min=20), default=100, show_default=True, help="Resolution of the PNG.")
def plot_command(run_dirs: tuple[Path, ...], metrics: tuple[str, ...], output: Path, dpi: int) -> None:
    """Draw train (solid) and validation (dashed) curves of each metric from the runs'
    metrics.jsonl, several runs overlaid and labelled by run directory name.

    Without --metric every train/val metric except lr gets a panel. Needs matplotlib
    (pip install 'runner-core[plot]').
    """
    from runner._cli.tools.plot import plot_runs

    drawn = plot_runs(run_dirs, metrics, output, dpi=dpi)
    click.echo(f"wrote {output} ({', '.join(drawn)}; {len(run_dirs)} run{'s' if len(run_dirs) > 1 else ''})")
