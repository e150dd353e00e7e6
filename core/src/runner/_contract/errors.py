"""Errors meant for users: the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class RunnerError(Exception):
    """Bad input from the user (recipe, checkpoint, plugin, data): shown without traceback."""

    exit_code = 2

    def lines(self) -> list[str]:
        """The message lines the CLI prints, one per problem."""
        return [str(self)]


class PluginError(RunnerError):
    """A plugin failed to load, register or build a component."""


class DataError(RunnerError):
    """Input data is missing or malformed."""


@attrs.frozen
class Problem:
    """One thing wrong with a recipe, located as precisely as we can."""

    path: str
    message: str
    file: str = "<recipe>"
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class RecipeError(RunnerError):
    """One or more problems found while loading or validating a recipe."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        return [str(p) for p in self.problems] + [f"recipe invalid: {count} {noun}"]
