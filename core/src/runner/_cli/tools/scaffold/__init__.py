"""``runner new-plugin``: write a ready-to-publish plugin distribution from templates.

The templates are package data (``templates/plugin``), rendered with
:class:`string.Template`: ``$dist``, ``$module``, ``$entry``, ``$dataset``, ``$callback``
``$core_range`` and ``$contract_range``; ``__module__`` and ``__entry__`` in file names are replaced too, and
the ``.tmpl`` suffix dropped (``gitignore.tmpl`` becomes ``.gitignore``).
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import attrs

from runner._contract.errors import RunnerError
from runner._version import CONTRACT_VERSION, __version__

_NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")


@attrs.frozen
class PluginNames:
    """Every name a new plugin needs, derived from the one the user gives."""

    dist: str  # runner-foo-bar: the distribution (pip install ...)
    module: str  # runner_foo_bar: the import package
    entry: str  # foo-bar: the entry-point name (shown by runner plugins)
    dataset: str  # foo_bar_blobs
    callback: str  # foo_bar_divergence
    core_range: str  # >=0.1,<0.2
    contract_range: str  # >=1.0,<2: the RUNNER_CONTRACT the entry module declares

    @classmethod
    def from_name(cls, name: str, core_version: str = __version__) -> PluginNames:
        """``foo`` or ``runner-foo`` → ``runner-foo`` / ``runner_foo`` / ``foo``."""
        normal = name.strip().lower().replace("_", "-")
        if not _NAME.fullmatch(normal):
            raise RunnerError(
                f"plugin name {name!r}: use lower-case letters, digits and dashes, "
                "starting with a letter (e.g. 'my-data')"
            )
        base = normal.removeprefix("runner-") or normal
        if base == "core" or base == "runner":
            raise RunnerError(f"plugin name {name!r} is taken by runner itself; choose another")
        ident = base.replace("-", "_")
        if keyword.iskeyword(ident):
            raise RunnerError(f"plugin name {name!r} is a Python keyword; choose another")
        dist = f"runner-{base}"
        return cls(
            dist=dist,
            module=dist.replace("-", "_"),
            entry=base,
            dataset=f"{ident}_blobs",
            callback=f"{ident}_divergence",
            core_range=compatible_range(core_version),
            contract_range=compatible_range(CONTRACT_VERSION),
        )

    def mapping(self) -> dict[str, str]:
        return attrs.asdict(self)


def compatible_range(version: str) -> str:
    """The core versions a plugin written against ``version`` declares: same minor for 0.x, same major after."""
    numbers = [int(part) for part in re.findall(r"\d+", version)[:2]] + [0, 0]
    major, minor = numbers[0], numbers[1]
    if major == 0:
        return f">={major}.{minor},<{major}.{minor + 1}"
    return f">={major}.{minor},<{major + 1}"


def templates() -> Any:
    """The plugin template tree shipped inside the core package."""
    return resources.files("runner._cli.tools.scaffold").joinpath("templates").joinpath("plugin")


def _walk(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.is_dir():
            if child.name != "__pycache__":
                found += _walk(child, (*prefix, child.name))
        elif child.name.endswith(".tmpl"):
            found.append(((*prefix, child.name), child))
    return found


def _target_name(part: str, names: PluginNames) -> str:
    part = part.removesuffix(".tmpl").replace("__module__", names.module).replace("__entry__", names.entry)
    return "." + part if part == "gitignore" else part


def render_plugin(names: PluginNames) -> dict[str, str]:
    """``{relative path: text}`` of every file of the new plugin."""
    values = names.mapping()
    files = {}
    for parts, template in _walk(templates()):
        path = "/".join(_target_name(part, names) for part in parts)
        files[path] = Template(template.read_text(encoding="utf-8")).substitute(values)
    return files


def write_plugin(name: str, directory: Path | None = None) -> tuple[Path, PluginNames, list[str]]:
    """Write the plugin into ``directory`` (default ``./runner-NAME``), which must be empty or new."""
    names = PluginNames.from_name(name)
    target = directory if directory is not None else Path(names.dist)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RunnerError(f"{target} already exists and is not an empty directory; choose another with --dir")
    files = render_plugin(names)
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target, names, sorted(files)
