"""Find the line and column where each key path of a TOML document is written.

tomllib gives values but no positions, so this skims the (already valid) text once and
records where every table header, key, and array item starts.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

KeyPath = tuple[str | int, ...]
_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@attrs.frozen
class Location:
    """Where a value came from: a file position or a command-line override."""

    file: str
    line: int | None = None
    column: int | None = None


@attrs.define
class SourceMap:
    """Key path → location, looked up by the longest known prefix."""

    default: Location
    locations: dict[KeyPath, Location] = attrs.Factory(dict)

    def set(self, path: KeyPath, location: Location) -> None:
        self.locations.setdefault(path, location)

    def override(self, path: KeyPath, location: Location) -> None:
        """A command-line override owns ``path`` and everything below it."""
        for known in [p for p in self.locations if p[: len(path)] == path]:
            del self.locations[known]
        self.locations[path] = location

    def find(self, path: Iterable[str | int]) -> Location:
        key = tuple(path)
        while key:
            if key in self.locations:
                return self.locations[key]
            key = key[:-1]
        return self.default

    def find_written(self, path: Iterable[str | int]) -> Location:
        """Like :meth:`find`, but a key written below ``path`` (an override of a longer
        path, which records only its full path) wins over the tables above it."""
        key = tuple(path)
        if key not in self.locations:
            for known, location in self.locations.items():
                if known[: len(key)] == key:
                    return location
        return self.find(key)


class _Skimmer:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.result = SourceMap(default=Location(file))
        self.array_tables: dict[KeyPath, int] = {}

    # -- low level ----------------------------------------------------------
    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i < len(self.text) and self.text[self.i] == "\n":
                self.line += 1
                self.line_start = self.i + 1
            self.i += 1

    def here(self) -> Location:
        return Location(self.file, self.line, self.i - self.line_start + 1)

    def skip_blank(self, newlines: bool) -> None:
        while self.i < len(self.text):
            c = self.peek()
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                while self.i < len(self.text) and self.peek() != "\n":
                    self.advance()
            else:
                return

    def jump(self, to: int) -> None:
        """Move to ``to`` at once (long strings: :meth:`advance` goes one character at a time)."""
        newlines = self.text.count("\n", self.i, to)
        if newlines:
            self.line += newlines
            self.line_start = self.text.rfind("\n", self.i, to) + 1
        self.i = to

    def skip_string(self) -> str:
        quote = self.peek()
        triple = self.text.startswith(quote * 3, self.i)
        delim = quote * 3 if triple else quote
        self.advance(len(delim))
        start = search = self.i
        while True:
            end = self.text.find(delim, search)
            if end < 0:
                self.jump(len(self.text))
                return self.text[start:]
            backslashes = 0
            while quote == '"' and end - backslashes > start and self.text[end - backslashes - 1] == "\\":
                backslashes += 1
            if backslashes % 2:  # an escaped quote: look further
                search = end + 1
                continue
            if triple:  # a closing run of 4 or 5 quotes ends the content with 1 or 2 of them
                run = 3
                while run < 5 and self.text.startswith(quote, end + run):
                    run += 1
                end += run - 3
            self.jump(end)
            value = self.text[start:end]
            self.advance(len(delim))
            return value

    def read_key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in "\"'":
                parts.append(self.skip_string())
            else:
                start = self.i
                while self.peek() in _BARE and self.peek():
                    self.advance()
                parts.append(self.text[start : self.i])
            self.skip_blank(newlines=False)
            if self.peek() == ".":
                self.advance()
                continue
            return tuple(parts)

    # -- structure ----------------------------------------------------------
    def record(self, path: KeyPath, location: Location) -> None:
        for n in range(1, len(path) + 1):
            self.result.set(path[:n], location)

    def expand(self, path: KeyPath) -> KeyPath:
        """Insert the latest element index after each array-of-tables prefix of a header."""
        out: KeyPath = ()
        for part in path:
            out = (*out, part)
            if out in self.array_tables:
                out = (*out, self.array_tables[out] - 1)
        return out

    def document(self) -> SourceMap:
        current: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                return self.result
            location = self.here()
            if self.text.startswith("[[", self.i):
                self.advance(2)
                path = self.read_key()
                self.advance(2)
                base = (*self.expand(path[:-1]), path[-1])
                index = self.array_tables.get(base, 0)
                self.array_tables[base] = index + 1
                current = (*base, index)
                self.record(current, location)
            elif self.peek() == "[":
                self.advance()
                current = self.expand(self.read_key())
                self.advance()
                self.record(current, location)
            else:
                key = (*current, *self.read_key())
                self.record(key, location)
                self.advance()  # '='
                self.value(key)

    def value(self, path: KeyPath) -> None:
        self.skip_blank(newlines=False)
        c = self.peek()
        if c == "{":
            self.advance()
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("}", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                location = self.here()
                key = (*path, *self.read_key())
                self.record(key, location)
                self.advance()  # '='
                self.value(key)
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_blank(newlines=True)
                if self.peek() in ("]", ""):
                    self.advance()
                    return
                if self.peek() == ",":
                    self.advance()
                    continue
                self.result.set((*path, index), self.here())
                self.value((*path, index))
                index += 1
        elif c in "\"'":
            self.skip_string()
        else:
            while self.peek() and self.peek() not in ",]}\n#":
                self.advance()


def locate(text: str, file: str) -> SourceMap:
    """Map every key path in the valid TOML ``text`` to where it is written."""
    return _Skimmer(text, file).document()
