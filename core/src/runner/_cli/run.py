"""``runner run``: train a recipe."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click

from runner._cli.common import recipe_options, recipe_path
from runner._cli.state import AppState
from runner._contract.errors import RunnerError
from runner._engine.claim import Claim, check_not_foreign, claim, claim_default, os_error, unclaimed

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
    if run_dir is not None:
        check_not_foreign(run_dir)  # before torch: `--run-dir .` in a project fails fast
    from runner._engine import progress as status  # torch-free

    if progress and sys.stderr.isatty():  # say what happens while torch loads (seconds)
        status.enable_status(sys.stderr)
        status.announce("loading torch")
    try:
        # The backend says whether this process is the run's primary, which claims the run
        # directory; it is built before the claim (importing torch) and before anything is written.
        from runner._engine.run import build_backend, execute

        backend = build_backend(validated, state.plugins)
        with claim_run_dir(
            validated.run.name, run_dir, resume=resume is not None, primary=backend.is_primary
        ) as claimed:
            try:
                result = execute(
                    validated,
                    state.plugins,
                    claimed.path,
                    resume=False if resume is None else (True if resume == RESUME_LATEST else resume),
                    allow_recipe_change=allow_recipe_change,
                    show_progress=progress,
                    backend=backend,
                )
            except OSError as exc:
                if exc.errno not in ENVIRONMENT_ERRORS:
                    raise
                where = Path(exc.filename) if exc.filename else claimed.path
                raise RunnerError(f"{where}: {os_error(exc, where)}") from exc
    finally:
        status.clear_status()
    click.echo(result.summary(validated.run.name))
    sys.stdout.flush()
    if result.interrupted:  # stopped cleanly by a signal: the shell's status for it (130, 143)
        from runner._engine.signals import exit_code

        sys.exit(exit_code(result.interrupted))


#: OS errors that are the machine's state (a full disk, a read-only file system), not bugs.
ENVIRONMENT_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def claim_run_dir(name: str, run_dir: Path | None, *, resume: bool, primary: bool) -> Claim:
    """The run directory, claimed for this run: ``--run-dir``, else ``runs/<name>`` when
    resuming, else the first free ``runs/<name>[-N]``. A process that is not the run's
    primary (a rank a launcher such as torchrun started) leaves the claim to the primary."""
    default = Path("runs")
    if not primary:
        return unclaimed(run_dir if run_dir is not None else default / name)
    if run_dir is not None:
        return claim(run_dir, resume=resume)
    if resume:
        return claim(default / name, resume=True)
    return claim_default(default, name)
