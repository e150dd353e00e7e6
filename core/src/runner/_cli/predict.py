"""``runner predict RUN_DIR``: the trained model's predictions on a split, a dataset or a file."""

from __future__ import annotations

from pathlib import Path

import click

from runner._cli.common import recipe_options

WEIGHTS_HELP = (
    "Which weights: final (default: model.safetensors), a name model.json lists (ema), best or last "
    "(runner-checkpoint's checkpoints), a checkpoint directory or a .safetensors file."
)


def run_dir_argument(func: click.decorators.FC) -> click.decorators.FC:
    return click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))(func)


def checkpoint_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option("--checkpoint", "which", metavar="final|best|last|NAME|PATH", help=WEIGHTS_HELP)(func)


@click.command("predict")
@run_dir_argument
@click.option("--split", metavar="NAME", help="A split of the run's recipe: test, val.main, train, ...")
@click.option(
    "--data",
    metavar="TABLE|FILE",
    help='A dataset table (\'{ name = "digits", split = "test" }\') or a data file (new.csv: read by the '
    "dataset named like its extension).",
)
@checkpoint_option
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write (default: RUN_DIR/predictions/<split or file>.jsonl).",
)
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), help="Default: from --output, else jsonl.")
@recipe_options
@click.pass_context
def predict_command(
    ctx: click.Context,
    run_dir: Path,
    split: str | None,
    data: str | None,
    which: str | None,
    output: Path | None,
    fmt: str | None,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
) -> None:
    """Predict with the model trained in RUN_DIR: one row per sample, with its index.

    \b
      runner predict runs/digits --split test
      runner predict runs/digits --data '{ name = "digits", split = "val" }' --format parquet
      runner predict runs/tabular --data new.csv --checkpoint best
    -o overrides apply to the run's recipe (-o run.device=cpu, -o run.backend=ddp).
    """
    from runner._inference.rundir import open_run

    given = (*ctx.find_root().params.get("local_plugins", ()), *local_plugins)  # runner -p X CMD, CMD -p X
    trained = open_run(run_dir, overrides=overrides, plugins=given)  # torch-free: errors come fast
    from runner._inference.predict import predict

    for note in trained.notes:
        click.echo(f"warning: {note}", err=True)
    result = predict(trained, data=data, split=split, output=output, fmt=fmt, which=which)
    click.echo(f"{result.rows} predictions with {result.weights} in {result.seconds:.1f}s -> {result.output}")
