"""Reading one command-line (or environment) value: TOML, else text."""

from __future__ import annotations

import sys
from typing import Any

from runner._recipe.limits import MAX_NESTING, nesting_position

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


def parse_value(raw: str) -> Any:
    """A command-line value: TOML (``3``, ``1e-3``, ``true``, ``[64, 64]``, ``"text"``,
    ``{name = "x"}``), else text. What a shell leaves of ``run.name='my run'`` is
    ``my run``: text that is not TOML is a string as it stands, unless it starts like a
    TOML array, table or string (``[1,``: an unclosed array is a mistake, not a name)."""
    raw = raw.strip()
    if nesting_position(raw) is not None:
        raise ValueError(f"value nested deeper than {MAX_NESTING} levels")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if not raw or raw[0] in "[{\"'" or "\n" in raw:
            shown = repr(raw if len(raw) <= 40 else raw[:40] + "...")
            raise ValueError(f"cannot parse value {shown} as TOML (quote strings: key='text')") from None
        value = raw
    except RecursionError:  # a stack already deep when parsing began; nesting_position bounds the rest
        raise ValueError(f"value nested too deeply (at most {MAX_NESTING} levels)") from None
    except ValueError:  # Python refuses to read integers of more than 4300 digits
        raise ValueError("integer too large: TOML integers are 64-bit (at most 19 digits)") from None
    return value
