"""Write a resolved recipe tree back as TOML."""

from __future__ import annotations

import enum
import pathlib
from typing import Any

import attrs
import tomli_w

from runner._contract.params import recipe_key


def _drop_none(value: Any) -> Any:
    # TOML has no null: an unset optional parameter is written as a comment-free omission.
    # Values the schema converted (nested attrs tables, enums, paths) go back to TOML values.
    if attrs.has(type(value)):
        value = {recipe_key(f): getattr(value, f.name) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value if v is not None]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return value


def render(tree: dict[str, Any]) -> str:
    """TOML text for ``tree``; keys whose value is None (unset) are left out."""
    return tomli_w.dumps(_drop_none(tree))
