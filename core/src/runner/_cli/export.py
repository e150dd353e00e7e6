"""``runner export RUN_DIR --format onnx|torch-export|torchscript``: the trained model as a
file other runtimes load, checked against eager PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from runner._cli.common import recipe_options
from runner._cli.predict import checkpoint_option, run_dir_argument


@click.command("export")
@run_dir_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torch-export", "torchscript"]),
    required=True,
    help="onnx (checked with onnxruntime; pip install 'runner-core[export]'), torch-export (.pt2) or "
    "torchscript (deprecated by PyTorch).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write (default: RUN_DIR/export/model.onnx, model.pt2 or model.torchscript.pt).",
)
@checkpoint_option
@click.option("--split", metavar="NAME", help="The split whose first batch is the example input (default: val.*).")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Absolute tolerance of the check.")
@click.option("--rtol", type=float, default=1e-3, show_default=True, help="Relative tolerance of the check.")
@recipe_options
@click.pass_context
def export_command(
    ctx: click.Context,
    run_dir: Path,
    fmt: str,
    output: Path | None,
    which: str | None,
    split: str | None,
    atol: float,
    rtol: float,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
) -> None:
    """Export the model trained in RUN_DIR and check it against eager PyTorch on one batch.

    \b
      runner export runs/digits --format onnx
      runner export runs/digits --format torch-export --checkpoint best
    """
    from runner._inference.rundir import open_run

    given = (*ctx.find_root().params.get("local_plugins", ()), *local_plugins)  # runner -p X CMD, CMD -p X
    trained = open_run(run_dir, overrides=overrides, plugins=given)  # torch-free: errors come fast
    from runner._inference.export import export

    for note in trained.notes:
        click.echo(f"warning: {note}", err=True)
    result = export(trained, fmt, output=output, which=which, split=split, atol=atol, rtol=rtol)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"exported {result.fmt} with {result.weights} in {result.seconds:.1f}s -> {result.output}; "
        f"max abs difference to eager {result.max_abs_diff:.3g} on {result.samples} samples ({result.checked_with})"
    )
