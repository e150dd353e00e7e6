"""``runner run``: train a recipe."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from runner._cli.common import default_run_dir, recipe_options, recipe_path
from runner._cli.state import AppState
from runner._contract.errors import RunnerError

RESUME_LATEST = "latest"


@click.command("run")
@recipe_path
@recipe_options
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where metrics, the resolved recipe and checkpoints go (default: runs/<name>).",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value=RESUME_LATEST,
    default=None,
    metavar="[PATH]",
    help="Resume from the latest valid checkpoint in the run directory, or from PATH.",
)
@click.option(
    "--allow-recipe-change",
    is_flag=True,
    help="Resume even if the recipe changed in ways that break exact resume (data, model, batch size...).",
)
@click.option("--progress/--no-progress", default=True, help="Show progress (a bar on terminals).")
@click.pass_context
def run_command(
    ctx: click.Context,
    recipe: str,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    run_dir: Path | None,
    resume: str | None,
    allow_recipe_change: bool,
    progress: bool,
) -> None:
    """Validate RECIPE, then train, validate and test it."""
    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    _, validated = state.load_recipe(recipe, overrides)
    if resume and validated.checkpoint is None:
        raise RunnerError("--resume needs a [checkpoint] table in the recipe (pip install runner-checkpoint)")
    if run_dir is None:
        run_dir = Path("runs") / validated.run.name if resume else default_run_dir(validated.run.name)
    elif not resume and (run_dir / "metrics.jsonl").exists():
        raise RunnerError(
            f"run directory {run_dir} already holds a run; pass --resume to continue it or choose another --run-dir"
        )
    from runner._engine import progress as status  # torch-free

    if progress and sys.stderr.isatty():  # say what happens while torch loads (seconds)
        status.enable_status(sys.stderr)
        status.announce("loading torch")
    try:
        from runner._engine.run import execute

        result = execute(
            validated,
            state.plugins,
            run_dir,
            resume=False if resume is None else (True if resume == RESUME_LATEST else resume),
            allow_recipe_change=allow_recipe_change,
            show_progress=progress,
        )
    finally:
        status.clear_status()
    click.echo(result.summary(validated.run.name))
    sys.stdout.flush()
    if result.interrupted:  # stopped cleanly by a signal: the shell's status for it (130, 143)
        from runner._engine.signals import exit_code

        sys.exit(exit_code(result.interrupted))
