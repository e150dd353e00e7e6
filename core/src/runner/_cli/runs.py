"""``runner runs [DIR]`` and ``runner runs compare A B``: what is in a runs directory."""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import click

from runner._contract.errors import RunnerError

STATUS_STYLE = {"finished": "green", "interrupted": "yellow", "running": "cyan", "crashed": "bold red"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _when(timestamp: float | None, year: bool = True) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M" if year else "%m-%d %H:%M")


def _console() -> Any:
    """A console as wide as the terminal, or ``$COLUMNS``; 160 columns into files and pipes."""
    import os

    from rich.console import Console

    sized = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(highlight=False, soft_wrap=False, width=None if sized else 160)


def _best(best: Any) -> str:
    """``accuracy 0.9888 @ 70``: the loader key only when it is not ``main``."""
    if best is None:
        return "-"
    metric = best.metric.removeprefix("main/")
    return f"{metric} {best.value:.4g} @ {best.step}"


class _RunsGroup(click.Group):
    """``runs [DIR]`` lists; ``runs compare A B`` is a subcommand, not a directory named compare."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] in self.commands:
            params = self.params
            self.params = [p for p in params if p.name != "directory"]
            try:
                return super().parse_args(ctx, args)
            finally:
                self.params = params
        return super().parse_args(ctx, args)


@click.group("runs", cls=_RunsGroup, invoke_without_command=True)
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--metric", metavar="NAME", help="Validation metric for the 'best' column (accuracy, main/loss, ...).")
@click.pass_context
def runs_group(ctx: click.Context, directory: Path | None = None, metric: str | None = None) -> None:
    """List the runs in DIR (default: runs/): status (finished, interrupted, running, crashed), steps,
    best validation metric and wall time. 'runner runs compare A B' compares two.

    A run is running while its process touches heartbeat.json, finished once it wrote
    summary.json, interrupted when a signal stopped it, and crashed otherwise.
    """
    if ctx.invoked_subcommand is not None:
        return
    from rich.markup import escape

    from runner._cli.tools.runs import find_runs, read_run

    root = directory if directory is not None else Path("runs")
    if not root.exists():
        raise RunnerError(f"no runs directory {root}")
    found = find_runs(root)
    if not found:
        click.echo(f"no runs in {root}")
        return
    infos = sorted((read_run(p, metric) for p in found), key=lambda i: (i.started or 0.0, str(i.path)))
    console = _console()
    rows = [
        [
            str(info.path.relative_to(root)) if info.path != root else info.name,
            info.status,
            "-" if info.steps is None else str(info.steps),
            _best(info.best),
            _duration(info.seconds),
            _when(info.started),
            info.note,
        ]
        for info in infos
    ]
    if console.width < 100:  # the year is the first thing to go
        for row, info in zip(rows, infos, strict=True):
            row[5] = _when(info.started, year=False)
    widths = fit_widths(rows, console.width)
    console.print(escape(f"runs in {root}"), crop=False)
    console.print(_line(list(HEADERS), widths), style="bold", crop=False)
    console.print(_line(["─" * w for w in widths], widths), style="dim", crop=False)
    for row in rows:
        line = escape(_line(row, widths))
        status = row[1]
        start = len(_line(row[:1], widths[:1])) + len(GAP)
        line = line[:start] + line[start:].replace(status, f"[{STATUS_STYLE[status]}]{status}[/]", 1)
        console.print(line, crop=False)


HEADERS = ("run", "status", "steps", "best", "wall", "started", "note")
GAP = "  "
#: (column, width) steps by which a table too wide shrinks: the note first, then the run's
#: name and the best metric, each cut with an ellipsis; every column stays, at 80 columns too.
SHRINK_STEPS = ((6, 24), (0, 12), (6, 8), (0, 8), (3, 16), (6, 4), (3, 12))


def table_width(widths: list[int]) -> int:
    return sum(widths) + len(GAP) * (len(widths) - 1)


def fit_widths(rows: list[list[str]], available: int) -> list[int]:
    """Column widths for ``rows`` within ``available`` columns (more only when even the
    narrowest widths do not fit)."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(HEADERS)]
    excess = table_width(widths) - available
    for column, floor in SHRINK_STEPS:
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[column] - max(floor, len(HEADERS[column]))))
        widths[column] -= cut
        excess -= cut
    return widths


def _cell(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: max(0, width - 1)] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _line(cells: list[str], widths: list[int]) -> str:
    right = {2, 4}  # steps and wall time
    return GAP.join(_cell(c, w, i in right) for i, (c, w) in enumerate(zip(cells, widths, strict=False))).rstrip()


def _final_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """Last value of every metric per stage and loader key (``val/main/accuracy``)."""
    from runner._engine.buffered import metric_items

    final: dict[str, float] = {}
    for record in records:
        final.update(metric_items(record))
    return final


def _recipe_tree(run_dir: Path) -> dict[str, Any]:
    from runner._engine.rundir import RECIPE_FILE
    from runner._recipe.source import parse_toml

    path = run_dir / RECIPE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunnerError(f"{run_dir} has no {RECIPE_FILE}: not a run directory?") from exc
    return parse_toml(text, str(path))


@runs_group.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="Show every recipe key, not only those that differ.")
@click.option(
    "--sort",
    "sort_metric",
    metavar="METRIC",
    help="Order the runs by their best value of this validation metric (main/accuracy, loss, ...), best first.",
)
def compare_command(runs: tuple[Path, ...], show_all: bool, sort_metric: str | None) -> None:
    """Compare runs: their recipe differences (from each run's recipe.toml) next to their
    status, steps, wall time and final metrics. A directory of runs (a sweep directory,
    runs/) stands for every run in it."""
    from rich.markup import escape
    from rich.table import Table

    from runner._cli.tools.runs import find_runs, is_run_dir, read_records, read_run
    from runner._engine.buffered import flatten

    dirs: list[Path] = []
    for path in runs:
        dirs += [path] if is_run_dir(path) else find_runs(path)
    dirs = list(dict.fromkeys(dirs))
    if len(dirs) < 2:
        raise RunnerError(f"runs compare needs two runs or more; found {len(dirs)} in {', '.join(map(str, runs))}")
    infos = [read_run(d, sort_metric) for d in dirs]
    if sort_metric is not None:
        from runner._engine.records import lower_is_better

        lower = lower_is_better(sort_metric)

        def rank(index: int) -> tuple[bool, float]:
            best = infos[index].best
            return (best is None, 0.0 if best is None else (best.value if lower else -best.value))

        order = sorted(range(len(dirs)), key=rank)
        dirs, infos = [dirs[i] for i in order], [infos[i] for i in order]
    recipes = [flatten(_recipe_tree(d)) for d in dirs]
    finals = [_final_metrics(read_records(d)) for d in dirs]
    names = [str(d) for d in dirs]
    missing = "[dim]-[/]"

    table = Table(title=escape(" vs ".join(names) if len(names) == 2 else f"{len(names)} runs"), title_justify="left")
    table.add_column("", no_wrap=True)
    for name in names:
        table.add_column(escape(name), overflow="fold")
    blank = [""] * (len(names) - 1)

    keys = list(dict.fromkeys(k for r in recipes for k in r))
    differing = [k for k in keys if len({repr(r.get(k)) for r in recipes}) > 1]
    table.add_section()
    table.add_row("[bold]recipe[/]", *blank, "" if differing or show_all else "[dim]identical[/]")
    for key in keys if show_all else differing:
        style = "yellow" if key in differing else "default"
        cells = [missing if r.get(key) is None else f"[{style}]{escape(str(r.get(key)))}[/]" for r in recipes]
        table.add_row(escape(key), *cells)

    table.add_section()
    table.add_row("[bold]run[/]", *blank, "")
    table.add_row("status", *(f"[{STATUS_STYLE[i.status]}]{i.status}[/]" for i in infos))
    table.add_row("steps", *("-" if i.steps is None else str(i.steps) for i in infos))
    table.add_row("wall time", *(_duration(i.seconds) for i in infos))
    if sort_metric is not None:
        table.add_row(f"best {escape(sort_metric)}", *("-" if i.best is None else f"{i.best.value:.6g}" for i in infos))
    if any(i.note for i in infos):
        table.add_row("note", *(escape(i.note) for i in infos))

    table.add_section()
    table.add_row("[bold]final metrics[/]", *blank, "")
    for name in dict.fromkeys(k for f in finals for k in f):
        table.add_row(escape(name), *(missing if f.get(name) is None else f"{f[name]:.6g}" for f in finals))
    _console().print(table)
