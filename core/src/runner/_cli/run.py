"""``runner run``: train a recipe; ``runner resume``: continue a run from its run directory."""

from __future__ import annotations

import errno
import sys
import time
from pathlib import Path

import click

from runner._cli.common import _complete_recipe, recipe_options
from runner._cli.state import AppState
from runner._contract.errors import RunnerError
from runner._engine.claim import Claim, check_not_foreign, claim, claim_default, os_error, unclaimed
from runner._engine.rundir import COMMAND_FILE, HEARTBEAT_FILE, MARKER_FILE, started_since

RESUME_LATEST = "latest"

_allow_recipe_change = click.option(
    "--allow-recipe-change",
    is_flag=True,
    help="Resume even if the recipe changed in ways that break exact resume (data, model, batch size, "
    "the learning-rate schedule...).",
)
_progress = click.option("--progress/--no-progress", default=True, help="Show progress (a bar on terminals).")


@click.command("run")
@click.argument(
    "recipe", required=False, type=click.Path(dir_okay=False, path_type=str), shell_complete=_complete_recipe
)
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
    help="Continue from the latest valid checkpoint in the run directory (from the beginning if it has none). "
    "--resume RUN_DIR names the run directory (new, or holding a run); --resume CHECKPOINT starts from that "
    "checkpoint. Without RECIPE: continue RUN_DIR with its saved recipe and plugins, like runner resume.",
)
@_allow_recipe_change
@_progress
@click.pass_context
def run_command(
    ctx: click.Context,
    recipe: str | None,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    run_dir: Path | None,
    resume: str | None,
    allow_recipe_change: bool,
    progress: bool,
) -> None:
    """Validate RECIPE, then train, validate and test it.

    The run directory keeps what continues the run: `runner resume RUN_DIR` (or
    `runner run --resume RUN_DIR`) reuses its recipe, overrides and local plugins.
    """
    if recipe is None:
        named = Path(resume) if resume not in (None, RESUME_LATEST) else None
        if named is not None and run_dir is not None and named.resolve() != run_dir.resolve():
            raise click.UsageError("--resume RUN_DIR and --run-dir name different directories")
        target = named or (run_dir if resume == RESUME_LATEST else None)
        if target is None:
            raise click.UsageError("missing RECIPE (or --resume RUN_DIR, to continue a run from its directory)")
        continue_run(ctx, target, overrides, local_plugins, allow_recipe_change, progress)
        return
    if resume not in (None, RESUME_LATEST) and run_dir is None and names_run_dir(Path(resume)):
        run_dir, resume = Path(resume), RESUME_LATEST  # --resume RUN_DIR: one command line for every start
    start_run(ctx, recipe, overrides, local_plugins, run_dir, resume, allow_recipe_change, progress)


@click.command("resume")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@recipe_options
@_allow_recipe_change
@_progress
@click.pass_context
def resume_command(
    ctx: click.Context,
    run_dir: Path,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    allow_recipe_change: bool,
    progress: bool,
) -> None:
    """Continue the run in RUN_DIR from its latest valid checkpoint.

    Uses only what RUN_DIR holds: its recipe.toml (the run's recipe with the command
    line's overrides applied), the local plugin files copied into RUN_DIR/plugins, and
    the checkpoints. -o changes that recipe (checked against the checkpoint like any
    change); -p loads further plugins.
    """
    continue_run(ctx, run_dir, overrides, local_plugins, allow_recipe_change, progress)


def names_run_dir(path: Path) -> bool:
    """Whether ``--resume PATH`` names a run directory rather than a checkpoint: a directory
    that is empty or holds a run, or a path that does not exist yet outside any run
    directory (a mistyped checkpoint inside a run is still reported as one)."""
    if path.is_dir():
        try:
            entries = {entry.name for entry in path.iterdir()}
        except OSError:
            return False
        return not entries or bool(entries & {MARKER_FILE, COMMAND_FILE, HEARTBEAT_FILE})
    if path.exists():
        return False
    return not any((parent / MARKER_FILE).exists() for parent in path.absolute().parents)


def continue_run(
    ctx: click.Context,
    run_dir: Path,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    allow_recipe_change: bool,
    progress: bool,
) -> None:
    """Continue the run in ``run_dir`` from its saved recipe and plugins."""
    from runner._engine.command import changed_plugin_copies, saved_recipe

    recipe = saved_recipe(run_dir)
    for path in changed_plugin_copies(run_dir):
        click.echo(f"warning: {path} changed since the run started (its sha256 differs from {COMMAND_FILE})", err=True)
    options = (allow_recipe_change, progress)
    start_run(ctx, str(recipe), overrides, local_plugins, run_dir, RESUME_LATEST, *options, continuing=True)


def start_run(
    ctx: click.Context,
    recipe: str,
    overrides: tuple[str, ...],
    local_plugins: tuple[str, ...],
    run_dir: Path | None,
    resume: str | None,
    allow_recipe_change: bool,
    progress: bool,
    *,
    continuing: bool = False,
) -> None:
    """Validate, claim the run directory, save the command there, train. ``continuing``:
    ``recipe`` is the ``recipe.toml`` of ``run_dir``, which the run continues."""
    from runner._engine.command import portable_plugins, with_plugins

    state = AppState.of(ctx)
    state.add_local_plugins(local_plugins)
    _, validated = state.load_recipe(recipe, overrides)
    if resume and validated.checkpoint is None:
        if continuing:
            raise RunnerError(
                f"{run_dir} cannot be resumed: its recipe has no [checkpoint] table; "
                f"rerun it from the start with: runner run {recipe}"
            )
        raise RunnerError("--resume needs a [checkpoint] table in the recipe (pip install runner-checkpoint)")
    # The run directory's recipe.toml lists the local plugins as copies beside it.
    plugins = portable_plugins(state.plugins.local_plugins)
    validated = with_plugins(validated, plugins)
    if run_dir is not None:
        check_not_foreign(run_dir)  # before torch: `--run-dir .` in a project fails fast
    from runner._engine import progress as status  # torch-free

    if progress and sys.stderr.isatty():  # say what happens while torch loads (seconds)
        status.enable_status(sys.stderr)
        status.announce("loading torch")
    try:
        # The backend says whether this process is the run's primary, which claims the run
        # directory; it is built before the claim (importing torch) and before anything is written.
        from runner._engine.command import KeptFiles, save_command
        from runner._engine.run import build_backend, execute

        backend = build_backend(validated, state.plugins)
        attempt = time.time()
        with claim_run_dir(
            validated.run.name, run_dir, resume=resume is not None, primary=backend.is_primary
        ) as claimed:
            kept = KeptFiles(claimed.path) if backend.is_primary and not claimed.fresh else None
            try:
                if backend.is_primary:
                    save_command(
                        claimed.path, recipe=recipe, overrides=overrides, plugins=plugins, resumed=resume is not None
                    )
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
            except BaseException:
                # A start that never trained leaves no "crashed" run behind, and a directory that
                # holds an earlier run still continues that run (a refused resume changes nothing).
                if not started_since(claimed.path, attempt):
                    if kept is not None:
                        kept.restore()
                    else:
                        claimed.discard_unstarted()
                raise
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
