"""Limits on what a recipe may hold, so hostile or broken TOML is a recipe error, not a crash.

tomllib parses integers of any size (TOML says 64 bits), stops with a bare ``ValueError``
on integer literals of more than 4300 digits, and recurses once per nesting level (a
``RecursionError`` a few hundred levels down). Dotted keys nest without limit. Everything
here is iterative and cheap on ordinary recipes.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from runner._recipe.locate import KeyPath

#: Deepest nesting of arrays and tables (dotted keys included) a recipe may use.
MAX_NESTING = 100
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
#: Python's limit on the digits of an int read from text (none before 3.11).
MAX_DIGITS: int = getattr(sys, "get_int_max_str_digits", lambda: 0)() or 4300
_LONG_INTEGER = re.compile(rf"[0-9](?:_?[0-9]){{{MAX_DIGITS},}}")


def nesting_position(text: str, limit: int = MAX_NESTING) -> tuple[int, int] | None:
    """``(line, column)`` where ``text`` first nests deeper than ``limit``, or None.

    Counts open brackets and braces plus the dots of the key being read (dotted keys nest
    tables; tomllib takes quadratic time on thousands of them), skipping strings and
    comments. Run before tomllib, which recurses once per level.
    """
    if text.count("[") + text.count("{") + text.count(".") <= limit:
        return None  # cannot nest that deep: skip the scan
    depth = dots = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _string_end(text, i)
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        if c == ".":
            dots += 1
        elif c in "=,[]{}\n":
            dots = 0
        if depth + dots > limit:
            return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1
        i += 1
    return None


def _string_end(text: str, start: int) -> int:
    """The index just past the TOML string opening at ``start``."""
    quote = text[start]
    delim = quote * 3 if text.startswith(quote * 3, start) else quote
    search = start + len(delim)
    while True:
        end = text.find(delim, search)
        if end < 0:
            return len(text)
        backslashes = 0
        while quote == '"' and text[end - backslashes - 1] == "\\" and end - backslashes > start:
            backslashes += 1
        if backslashes % 2 == 0:
            end += len(delim)
            extra = 0
            while len(delim) == 3 and extra < 2 and text.startswith(quote, end):
                end, extra = end + 1, extra + 1  # a closing run of 4 or 5 quotes ends the content with 1 or 2
            return end
        search = end + 1


def long_integer_position(text: str) -> tuple[int, int, int] | None:
    """``(line, column, digits)`` of the first integer literal too long for Python to read."""
    match = _LONG_INTEGER.search(text)
    if match is None:
        return None
    start = match.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return line, column, len(match.group().replace("_", ""))


def value_problems(data: Any, limit: int = MAX_NESTING) -> list[tuple[KeyPath, str]]:
    """Integers outside TOML's 64 bits and nesting deeper than ``limit``, by key path."""
    problems: list[tuple[KeyPath, str]] = []
    stack: list[tuple[KeyPath, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                problems.append((path, f"integer out of range: TOML integers are 64-bit ({INT_MIN} to {INT_MAX})"))
            continue
        if isinstance(value, (dict, list)):
            if len(path) >= limit:
                problems.append((path, f"nested deeper than {limit} levels"))
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(((*path, key), item) for key, item in items)
    return sorted(problems, key=lambda p: [str(part) for part in p[0]])
