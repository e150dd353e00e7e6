"""Throwaway plugin distributions for tests, made from a dict of files (like pytest's ``pytester``).

A plugin is found through the ``runner`` entry points of the distributions on ``sys.path``.
:func:`make_plugin_dist` writes the modules and a ``*.dist-info`` (``METADATA``,
``entry_points.txt``, ``RECORD``) straight into a directory, which is then installed for
whoever has it on ``sys.path`` (this process, through ``runner_tester.plugin_dist``) or on
``PYTHONPATH`` (a subprocess, through :meth:`PluginDist.env`): no build, milliseconds.
``pip=True`` builds a real project with pip instead (seconds: mark such tests slow), for
tests about packaging itself. :func:`pip_install` installs an existing project directory
the same way.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs


@attrs.frozen
class PluginDist:
    """A plugin distribution installed into :attr:`site` (a directory for ``sys.path``)."""

    name: str
    version: str
    site: Path
    modules: tuple[str, ...]
    """Top-level modules and packages it provides."""
    entry_points: Mapping[str, str]
    """Its ``runner`` entry points: plugin name -> module (or ``module:attr``)."""

    def env(self, **extra: str) -> dict[str, str]:
        """Environment variables under which a subprocess has this distribution installed:
        :attr:`site` first on ``PYTHONPATH`` (``extra`` added, e.g. ``RUNNER_PLUGINS``)."""
        paths = [str(self.site), *filter(None, [extra.pop("PYTHONPATH", None), os.environ.get("PYTHONPATH")])]
        return {"PYTHONPATH": os.pathsep.join(paths), **extra}


def _normalized(name: str) -> str:
    """The distribution name as a file name (``runner-my.plugin`` -> ``runner_my_plugin``)."""
    return re.sub(r"[-_.]+", "_", name)


def top_level_modules(files: Iterable[str]) -> tuple[str, ...]:
    """Importable top-level names among ``files`` (``pkg/x.py`` -> ``pkg``, ``mod.py`` -> ``mod``)."""
    found: dict[str, None] = {}
    for relative in files:
        parts = Path(relative).parts
        if len(parts) == 1 and parts[0].endswith(".py"):
            found[parts[0][:-3]] = None
        elif len(parts) > 1 and relative.endswith(".py"):
            found[parts[0]] = None
    return tuple(found)


def _default_entry_points(name: str, files: Mapping[str, str], modules: tuple[str, ...]) -> dict[str, str]:
    if len(modules) != 1:
        raise ValueError(f"{name}: {len(modules)} top-level modules {list(modules)}: say which is the entry point")
    target = modules[0]
    if f"{target}/plugin.py" in files:
        target += ".plugin"
    return {name.removeprefix("runner-"): target}


def make_plugin_dist(
    site: str | os.PathLike[str],
    name: str,
    files: Mapping[str, str],
    *,
    entry_points: Mapping[str, str] | None = None,
    version: str = "0.1.0",
    requires: Iterable[str] = (),
    pip: bool = False,
) -> PluginDist:
    """Install a plugin distribution named ``name`` into the directory ``site``.

    ``files`` maps paths (relative to the import root: ``runner_mine/plugin.py``) to their
    text, dedented. ``entry_points`` maps plugin names to modules (``module:attr``); by
    default the one top-level module (its ``plugin`` submodule if it has one) under the
    distribution name without ``runner-``. ``requires`` are ``Requires-Dist`` lines (such as
    ``runner-core>=9``). Several distributions may share one ``site``, as in a real
    ``site-packages``. ``pip=True`` writes a project and installs it with
    ``pip install --no-deps --no-build-isolation --target site`` (needs hatchling or
    setuptools installed).
    """
    site = Path(site)
    modules = top_level_modules(files)
    points = dict(entry_points) if entry_points is not None else _default_entry_points(name, files, modules)
    texts = {path: textwrap.dedent(text).lstrip("\n") for path, text in files.items()}
    site.mkdir(parents=True, exist_ok=True)
    if pip:
        with tempfile.TemporaryDirectory(prefix=f"{_normalized(name)}-", dir=site.parent) as build:
            project = Path(build)
            _write(project, texts)
            pyproject = _pyproject(name, version, sorted({Path(f).parts[0] for f in texts}), points, requires)
            (project / "pyproject.toml").write_text(pyproject, encoding="utf-8")
            pip_install(project, site)
    else:
        _write(site, texts)
        _write_dist_info(site, name, version, points, requires, list(texts))
    return PluginDist(name, version, site, modules, points)


def _write(root: Path, texts: Mapping[str, str]) -> None:
    for relative, text in texts.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _metadata(name: str, version: str, requires: Iterable[str]) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n"


def _entry_points_text(points: Mapping[str, str]) -> str:
    return "[runner]\n" + "".join(f"{plugin} = {target}\n" for plugin, target in points.items())


def _write_dist_info(
    site: Path, name: str, version: str, points: Mapping[str, str], requires: Iterable[str], files: list[str]
) -> None:
    info = site / f"{_normalized(name)}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(_metadata(name, version, requires), encoding="utf-8")
    (info / "entry_points.txt").write_text(_entry_points_text(points), encoding="utf-8")
    record = [*files, *(f"{info.name}/{n}" for n in ("METADATA", "entry_points.txt", "RECORD"))]
    (info / "RECORD").write_text("".join(f"{path},,\n" for path in record), encoding="utf-8")


def _pyproject(name: str, version: str, tops: list[str], points: Mapping[str, str], requires: Iterable[str]) -> str:
    """A ``pyproject.toml`` packaging the top-level entries ``tops`` (packages and ``.py`` files)."""
    dependencies = ", ".join(f'"{r}"' for r in requires)
    text = f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{dependencies}]\n\n'
    text += "[project.entry-points.runner]\n" + "".join(f'"{p}" = "{t}"\n' for p, t in points.items())
    if importlib.util.find_spec("hatchling") is not None:
        backend = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n\n'
        return backend + text + f"\n[tool.hatch.build.targets.wheel]\nonly-include = {tops!r}\n"
    if importlib.util.find_spec("setuptools") is not None:
        backend = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        packages = [t for t in tops if not t.endswith(".py")]
        single = [t[:-3] for t in tops if t.endswith(".py")]
        return backend + text + f"\n[tool.setuptools]\npackages = {packages!r}\npy-modules = {single!r}\n"
    raise RuntimeError("make_plugin_dist(pip=True) needs hatchling or setuptools installed")


def pip_install(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Build the project at ``source`` and install it (no dependencies, no build isolation)
    into the directory ``target``, as pip would for a user; returns ``target``."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--no-deps", "--no-build-isolation", "--target", str(target), str(source)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install {source}:\n{done.stdout}{done.stderr}")
    return Path(target)
