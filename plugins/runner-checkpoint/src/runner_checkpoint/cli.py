"""``runner checkpoints list|verify|show``: inspect a run's checkpoints without training
(and without importing torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from runner import RunnerError
from runner_checkpoint.fsutil import read_regular
from runner_checkpoint.manifest import MANIFEST, CorruptCheckpoint, read_manifest, verify
from runner_checkpoint.store import CHECKPOINTS, Entry, Store


def _store_and_selection(target: Path) -> tuple[Store, list[Entry]]:
    """A run directory, its checkpoints directory, or one checkpoint directory."""
    if (target / MANIFEST).exists():
        store = Store(target.parent)
        try:
            entry = Entry(target.name, target, read_manifest(target))
        except CorruptCheckpoint as exc:
            entry = Entry(target.name, target, None, "; ".join(exc.problems))
        return store, [entry]
    root = target / CHECKPOINTS if (target / CHECKPOINTS).is_dir() else target
    if not root.is_dir():
        raise RunnerError(f"{target}: no such directory")
    store = Store(root)
    entries = store.entries()
    if not entries:
        raise RunnerError(f"{root}: no checkpoints")
    return store, entries


def _size(entry: Entry) -> str:
    files = (entry.manifest or {}).get("files", {})
    total = (
        float(sum(f.get("size", 0) for f in files.values()))
        if files
        else sum(p.stat().st_size for p in entry.path.iterdir() if p.is_file())
    )
    for unit in ("B", "KB", "MB", "GB"):
        if total < 1024 or unit == "GB":
            return f"{total:.0f} {unit}" if unit == "B" else f"{total:.1f} {unit}"
        total /= 1024
    return ""  # pragma: no cover


def _status(entry: Entry, latest: str | None, problems: list[str] | None) -> str:
    if entry.manifest is None:
        status = "DAMAGED"
    elif problems is None:
        status = "manifest ok"
    else:
        status = "ok" if not problems else "DAMAGED"
    if entry.name == latest:
        status += ", latest"
    return status


def _unlisted(directory: Path, listed: set[str]) -> list[str]:
    """What ``directory`` holds beyond the manifest's files (folders only when nothing in
    them is listed: ``dcp/`` holds a sharded checkpoint's listed files)."""
    found = []
    for path in sorted(directory.iterdir()):
        inside = sorted(p for p in path.rglob("*") if not p.is_dir()) if path.is_dir() and not path.is_symlink() else []
        names = [p.relative_to(directory).as_posix() for p in inside]
        if path.name in listed or (names and any(name in listed for name in names)):
            found += [name for name in names if name not in listed]
        else:
            found.append(path.name)
    return found


class _Checkpoints(click.Group):
    """``runner checkpoints RUN_DIR`` is short for ``runner checkpoints list RUN_DIR``."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and Path(args[0]).exists():
            return "list", self.commands["list"], args
        return super().resolve_command(ctx, args)


@click.group("checkpoints", cls=_Checkpoints)
def checkpoints_group() -> None:
    """List, verify and show the checkpoints of a run directory.

    \b
      runner checkpoints list RUN_DIR     (or just: runner checkpoints RUN_DIR)
      runner checkpoints verify RUN_DIR   (exit status 1 if any is damaged)
      runner checkpoints show RUN_DIR     (provenance of the latest, or of a checkpoint dir)
    """


@checkpoints_group.command("list")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--fast", is_flag=True, help="Check manifests only; do not hash the files.")
def list_command(run_dir: Path, fast: bool) -> None:
    """List checkpoints with step, epoch, monitored metric, size and validity."""
    store, entries = _store_and_selection(run_dir)
    latest = store.latest_name()
    rows = [("NAME", "STEP", "EPOCH", "REASON", "MONITOR", "SIZE", "STATUS")]
    notes = []
    for entry in entries:
        problems = None if fast else verify(entry.path)
        manifest = entry.manifest or {}
        monitor = entry.monitor
        rows.append(
            (
                entry.name,
                str(entry.step),
                str(manifest.get("epoch", "?")),
                str(manifest.get("reason", "?")),
                f"{monitor[0]}={monitor[1]:.6g}" if monitor else "-",
                _size(entry),
                _status(entry, latest, problems),
            )
        )
        for problem in problems or ([entry.error] if entry.error else []):
            notes.append(f"{entry.name}: {problem}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for note in notes:
        click.echo(note, err=True)


@checkpoints_group.command("verify")
@click.argument("target", type=click.Path(path_type=Path))
@click.pass_context
def verify_command(ctx: click.Context, target: Path) -> None:
    """Verify every file of every checkpoint (or of one) against its manifest.

    Exits with status 1 when any checkpoint is damaged.
    """
    _, entries = _store_and_selection(target)
    damaged = 0
    for entry in entries:
        problems = verify(entry.path)
        listed = set((entry.manifest or {}).get("files", {})) | {MANIFEST}
        extra = _unlisted(entry.path, listed)
        if problems:
            damaged += 1
            click.echo(f"{entry.name}: DAMAGED")
            for problem in problems:
                click.echo(f"  {problem}")
        else:
            count = len(listed) - 1
            click.echo(f"{entry.name}: ok ({count} files verified)")
        if extra:
            click.echo(f"  not in the manifest (never loaded): {', '.join(extra)}")
    if damaged:
        click.echo(f"{damaged} of {len(entries)} checkpoints damaged", err=True)
        ctx.exit(1)


@checkpoints_group.command("show")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--recipe/--no-recipe", "show_recipe", default=True, help="Print the resolved recipe.")
@click.option("--json", "as_json", is_flag=True, help="Print manifest and provenance as JSON.")
def show_command(target: Path, show_recipe: bool, as_json: bool) -> None:
    """Show the provenance of a checkpoint (default: the latest of a run directory)."""
    store, entries = _store_and_selection(target)
    if len(entries) > 1:
        latest = store.latest_name()
        entry = next((e for e in entries if e.name == latest), entries[-1])
    else:
        entry = entries[0]
    if entry.manifest is None:
        raise RunnerError(f"{entry.path}: {entry.error}")
    try:
        provenance: dict[str, Any] = json.loads(read_regular(entry.path / "provenance.json").decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"{entry.path}: cannot read provenance.json: {exc}") from None
    manifest = entry.manifest
    if as_json:
        click.echo(json.dumps({"manifest": manifest, "provenance": provenance}, indent=2))
        return
    click.echo(f"checkpoint {entry.path}")
    for key in ("step", "epoch", "batch_in_epoch", "epoch_done", "samples_seen", "reason", "created"):
        click.echo(f"  {key}: {manifest.get(key)}")
    if manifest.get("monitor"):
        monitor = manifest["monitor"]
        click.echo(f"  monitor: {monitor.get('name')} = {monitor.get('value')} ({monitor.get('mode')})")
    click.echo("files:")
    for name, info in sorted(manifest.get("files", {}).items()):
        click.echo(f"  {name}  {info['size']} bytes  sha256 {info['sha256']}")
    click.echo("versions:")
    for name, version in provenance.get("versions", {}).items():
        click.echo(f"  {name} {version}")
    click.echo("plugins:")
    for plugin in provenance.get("plugins", []):
        line = f"  {plugin.get('distribution')} {plugin.get('version')} ({plugin.get('name')})"
        if plugin.get("sha256"):
            line += f" sha256 {plugin['sha256'][:16]}"
        click.echo(line)
    click.echo(f"recipe: {provenance.get('recipe_path')}")
    if show_recipe:
        from runner import render_toml as render

        click.echo(render(provenance.get("recipe", {})), nl=False)
