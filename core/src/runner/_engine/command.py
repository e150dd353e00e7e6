"""The command that started a run, kept in its run directory so the run can be continued
(``runner resume RUN_DIR``) or rerun (``runner run RUN_DIR/recipe.toml``) from there alone.

``runner run`` saves, on the primary process, right after claiming the directory:

- ``plugins/``: a copy of every local plugin file the run loaded (``-p FILE.py``, a
  recipe's ``plugins = ["FILE.py"]``). The run directory's ``recipe.toml`` lists these
  copies (``plugins = ["plugins/FILE.py"]``, relative to itself) and also the ``-p``
  modules and ``no:NAME`` specs, so the saved recipe loads exactly the run's plugins.
- ``command.json``: every command started in the directory (recipe file and its sha256,
  overrides, local plugins with the sha256 of each copy, working directory, time) and
  the command that continues the run.

A plugin file keeps its name when copied (a local plugin is named after its file, and
checkpointed plugin state is keyed by that name); two files of one name from different
directories go to ``plugins/2/NAME.py`` and so on. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from runner._contract.context import resume_command
from runner._contract.errors import RunnerError
from runner._contract.recipe import Recipe
from runner._engine.rundir import COMMAND_FILE, PLUGINS_DIR, RECIPE_FILE
from runner._version import __version__


@attrs.frozen
class LocalPlugin:
    """A local plugin spec as the run loaded it, and as the run directory's recipe lists it."""

    spec: str
    """The spec the run loaded: a ``.py`` file path, a module name or ``no:NAME``."""
    saved: str
    """What the run directory's ``recipe.toml`` lists: ``plugins/NAME.py`` for a file (a
    path relative to the run directory), the spec itself otherwise."""

    @property
    def is_file(self) -> bool:
        """A ``.py`` file (copied into the run directory), not a module or ``no:NAME``."""
        return _is_file(self.spec)


def _is_file(spec: str) -> bool:
    return spec.endswith(".py") and not spec.startswith("no:")


def portable_plugins(specs: Sequence[str]) -> list[LocalPlugin]:
    """Where each local plugin of a run is found from its run directory (see the module doc)."""
    found: list[LocalPlugin] = []
    taken: dict[str, Path] = {}  # saved name -> the file it copies
    for spec in dict.fromkeys(specs):
        if not _is_file(spec):
            found.append(LocalPlugin(spec, spec))
            continue
        path = Path(spec).resolve()
        name = path.name
        saved = f"{PLUGINS_DIR}/{name}"
        index = 1
        while saved in taken and taken[saved] != path:
            index += 1
            saved = f"{PLUGINS_DIR}/{index}/{name}"
        taken[saved] = path
        found.append(LocalPlugin(spec, saved))
    return found


def with_plugins(recipe: Recipe, plugins: Sequence[LocalPlugin]) -> Recipe:
    """``recipe`` listing ``plugins`` as its run directory finds them (``plugins`` key)."""
    specs = tuple(p.saved for p in plugins)
    if specs == recipe.plugins:
        return recipe
    rest = {key: value for key, value in recipe.resolved.items() if key != "plugins"}
    resolved = {"plugins": list(specs), **rest} if specs else rest
    return attrs.evolve(recipe, plugins=specs, resolved=resolved)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_plugins(run_dir: Path, plugins: Sequence[LocalPlugin]) -> list[dict[str, str]]:
    """Copy the plugin files into ``run_dir`` (a file already there, as when a run is
    continued from its own directory, stays); one ``{"spec", "file", "sha256"}`` each."""
    rows: list[dict[str, str]] = []
    for plugin in plugins:
        if not plugin.is_file:
            rows.append({"spec": plugin.spec})
            continue
        source, target = Path(plugin.spec), run_dir / plugin.saved
        if not target.exists() or not os.path.samefile(source, target):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        rows.append({"spec": plugin.spec, "file": plugin.saved, "sha256": sha256_of(target)})
    return rows


def command_line(recipe: str, overrides: Sequence[str], plugins: Sequence[LocalPlugin], run_dir: Path) -> str:
    """The ``runner run`` command line equivalent to a start (for people reading command.json)."""
    words = ["runner", "run", recipe]
    for item in overrides:
        words += ["-o", item]
    for plugin in plugins:
        words += ["-p", plugin.spec]
    words += ["--run-dir", str(run_dir)]
    return shlex.join(words)


def save_command(
    run_dir: Path,
    *,
    recipe: str,
    overrides: Sequence[str],
    plugins: Sequence[LocalPlugin],
    resumed: bool,
) -> None:
    """Copy the local plugin files into ``run_dir`` and add this start to ``command.json``."""
    entry: dict[str, Any] = {
        "command": command_line(recipe, overrides, plugins, run_dir),
        "recipe": recipe,
        "recipe_sha256": sha256_of(Path(recipe)) if Path(recipe).is_file() else None,
        "overrides": list(overrides),
        "plugins": copy_plugins(run_dir, plugins),
        "resume": resumed,
        "cwd": os.getcwd(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runner": __version__,
    }
    try:
        saved = _read(run_dir / COMMAND_FILE) if (run_dir / COMMAND_FILE).is_file() else {}
    except RunnerError:  # damaged: the earlier starts are forgotten, this one is recorded
        saved = {}
    commands = saved.get("commands")
    earlier: list[Any] = commands if isinstance(commands, list) else []
    data = {"resume": resume_command(run_dir), "recipe": RECIPE_FILE, "commands": [*earlier, entry]}
    tmp = run_dir / f".{COMMAND_FILE}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / COMMAND_FILE)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunnerError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RunnerError(f"{path} is not a runner command file (expected a JSON object)")
    return data


def saved_recipe(run_dir: Path) -> Path:
    """The recipe that continues the run in ``run_dir``: its ``recipe.toml``. A one-line
    error when ``run_dir`` holds no run that can be continued."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunnerError(f"{run_dir} is not a run directory")
    if not run_dir.is_dir():
        raise RunnerError(
            f"run directory {run_dir} does not exist; start the run with: runner run RECIPE --resume {run_dir}"
        )
    if not (run_dir / COMMAND_FILE).is_file():
        raise RunnerError(
            f"{run_dir} holds no saved command ({COMMAND_FILE}): it is no run directory, or its run "
            f"started before runner saved commands; continue it with: runner run RECIPE --run-dir {run_dir} --resume"
        )
    recipe = run_dir / RECIPE_FILE
    if not recipe.is_file():
        raise RunnerError(f"{run_dir} has no {RECIPE_FILE}: the run cannot be continued from its directory")
    return recipe


def changed_plugin_copies(run_dir: Path) -> list[str]:
    """Plugin copies in ``run_dir`` whose content differs from what the last start recorded."""
    commands = _read(run_dir / COMMAND_FILE).get("commands") or []
    last = commands[-1] if commands and isinstance(commands[-1], dict) else {}
    changed = []
    for row in last.get("plugins") or []:
        if not isinstance(row, dict) or "file" not in row:
            continue
        path = run_dir / str(row["file"])
        if path.is_file() and sha256_of(path) != row.get("sha256"):
            changed.append(str(path))
    return changed


class KeptFiles:
    """What a run directory says about the run it holds (``recipe.toml``, ``command.json``,
    the plugin copies), kept before a new start writes them: a start that fails before it
    trains (a refused resume, a logger that cannot connect) puts them back, so the
    directory still continues its run."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        names = [RECIPE_FILE, COMMAND_FILE]
        plugins = run_dir / PLUGINS_DIR
        if plugins.is_dir():
            names += [str(p.relative_to(run_dir)) for p in sorted(plugins.rglob("*.py"))]
        self.files: dict[str, bytes | None] = {}
        for name in names:
            try:
                self.files[name] = (run_dir / name).read_bytes()
            except FileNotFoundError:
                self.files[name] = None

    def restore(self) -> None:
        """Write the kept files back (best effort: the failed start's error is what matters)."""
        plugins = self.run_dir / PLUGINS_DIR
        added = [p for p in plugins.rglob("*.py") if str(p.relative_to(self.run_dir)) not in self.files]
        for path in added:  # copied by the failed start only
            path.unlink(missing_ok=True)
        for name, data in self.files.items():
            path = self.run_dir / name
            try:
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(data)
            except OSError:
                continue
