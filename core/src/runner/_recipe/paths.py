"""Paths in recipes, resolved one way: relative to the file that wrote them.

A component parameter declared ``param(path=...)`` (or typed ``pathlib.Path``) holds a
path. A relative one is joined to the directory of the recipe file that wrote the value
(an included file's own directory, through any depth of includes), or to the working
directory when it came from ``-o``; ``~`` is expanded. The result is absolute, so the
resolved recipe a run writes means the same from any directory. ``path=True`` values
must exist and ``path="glob"`` patterns must match, or validation reports them with
their key; ``path="output"`` values are only resolved. A URL (``scheme://...``) is no local
path: it is left as written and not checked (a ``[[process]]`` step's ``inputs`` may hold
URLs for its processor to fetch).
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
from collections.abc import Iterable
from typing import Any, Protocol

from runner._recipe.locate import KeyPath
from runner._recipe.source import RecipeSource
from runner._schema.fields import Field


class _Reporter(Protocol):
    source: RecipeSource

    def problem(self, path: KeyPath, message: str) -> None: ...


#: ``scheme://`` at the start of a value: a URL, never joined to a directory. Two letters at
#: least, so a Windows drive (``C:/``) stays a path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(value: str) -> bool:
    """Whether ``value`` is a URL (``https://...``, ``s3://...``), not a local path."""
    return _URL.match(value) is not None


def resolve_one(base: pathlib.Path, value: str) -> str:
    """``value`` joined to ``base`` unless absolute (``~`` expanded); ``""`` and URLs stay as written."""
    if not value or is_url(value):
        return value
    expanded = os.path.expanduser(value)
    return expanded if os.path.isabs(expanded) else os.path.normpath(os.path.join(base, expanded))


def _check(reporter: _Reporter, where: KeyPath, kind: bool | str, resolved: str, written: str) -> None:
    if not resolved or kind == "output" or is_url(resolved):
        return
    relative = "" if os.path.isabs(os.path.expanduser(written)) else " (relative to the file that wrote it)"
    if kind == "glob":
        if not glob.glob(resolved, recursive=True):
            reporter.problem(where, f"no file matches {resolved!r}{relative}")
    elif not os.path.exists(resolved):
        reporter.problem(where, f"no such file or directory: {resolved!r}{relative}")


def resolve_paths(
    reporter: _Reporter, path: KeyPath, params: dict[str, Any], fields: dict[str, Field], written: Iterable[str]
) -> None:
    """Resolve (in place) the path parameters among ``params`` that the recipe wrote."""
    for key in written:
        field = fields.get(key)
        value = params.get(key)
        if field is None or not field.path or value is None:
            continue
        base = reporter.source.base_dir((*path, key))
        if isinstance(value, (str, pathlib.PurePath)):
            resolved = resolve_one(base, str(value))
            _check(reporter, (*path, key), field.path, resolved, str(value))
            params[key] = type(value)(resolved) if isinstance(value, pathlib.PurePath) else resolved
        elif isinstance(value, list):
            items = []
            for index, item in enumerate(value):
                if isinstance(item, (str, pathlib.PurePath)):
                    resolved = resolve_one(base, str(item))
                    _check(reporter, (*path, key, index), field.path, resolved, str(item))
                    items.append(type(item)(resolved) if isinstance(item, pathlib.PurePath) else resolved)
                else:
                    items.append(item)
            params[key] = items
