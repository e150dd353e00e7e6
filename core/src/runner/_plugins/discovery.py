"""Find the ``runner`` entry points of installed distributions, fast.

``importlib.metadata.entry_points()`` parses every distribution's metadata (and imports
``email``, ``zipfile`` and ``csv`` to do it), which dominates ``runner --help``. Plugins are
installed as ``*.dist-info`` (or legacy ``*.egg-info``) directories on ``sys.path``, so this
reads only their ``entry_points.txt`` and, for the few that declare a ``[runner]`` section,
the ``Name``/``Version`` header lines of their metadata. The first distribution of a name on
``sys.path`` wins, as with importlib.metadata.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterable
from typing import Any

import attrs

_SECTION = re.compile(r"^\[(?P<name>[^\]]+)\]\s*$")
_META_DIRS = (".dist-info", ".egg-info")


@attrs.frozen
class EntryPoint:
    """One ``name = module:attr`` line of a distribution's ``entry_points.txt``."""

    name: str
    value: str
    dist: str
    version: str

    def load(self) -> Any:
        """Import the module and return the attribute (or the module itself)."""
        module_name, _, attr = self.value.partition(":")
        target: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            target = getattr(target, part)
        return target


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _group_lines(text: str, group: str) -> list[tuple[str, str]]:
    entries: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        section = _SECTION.match(line)
        if section:
            inside = section.group("name").strip() == group
            continue
        if inside and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


def _name_version(meta_dir: str) -> tuple[str, str]:
    name = version = ""
    for file_name in ("METADATA", "PKG-INFO"):
        path = os.path.join(meta_dir, file_name)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # end of the header block
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
        break
    if not name:  # fall back to the directory name: <name>-<version>.dist-info
        stem = os.path.basename(meta_dir).rsplit(".", 1)[0]
        name, _, version = stem.partition("-")
    return name, version or "?"


def entry_points(group: str, paths: Iterable[str] | None = None) -> list[EntryPoint]:
    """Entry points of ``group`` across distributions on ``paths`` (default ``sys.path``)."""
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for directory in paths if paths is not None else sys.path:
        try:
            children = sorted(os.scandir(directory or "."), key=lambda e: e.name)
        except OSError:
            continue
        for child in children:
            if not child.name.endswith(_META_DIRS) or not child.is_dir():
                continue
            stem = child.name.rsplit(".", 1)[0]
            dist_key = _normalize(stem.partition("-")[0])
            if dist_key in seen:
                continue
            seen.add(dist_key)
            try:
                with open(os.path.join(child.path, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            if f"[{group}]" not in text:
                continue
            lines = _group_lines(text, group)
            if lines:
                name, version = _name_version(child.path)
                found += [EntryPoint(ep_name, value, name, version) for ep_name, value in lines]
    return found
