"""Write a resolved recipe tree back as TOML."""

from __future__ import annotations

from typing import Any

import tomli_w


def _drop_none(value: Any) -> Any:
    # TOML has no null: an unset optional parameter is written as a comment-free omission.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_none(v) for v in value if v is not None]
    return value


def render(tree: dict[str, Any]) -> str:
    """TOML text for ``tree``; keys whose value is None (unset) are left out."""
    return tomli_w.dumps(_drop_none(tree))
