"""A local plugin for the runner-ray tests (loaded by path, so Ray must ship it by value):
a processor that parses numbers from text files and records which processes ran it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from runner import RegisterComponent, hookimpl, param


@attrs.define
class ParseParams:
    scale: float = param(1.0)
    fail_on: str = param("", doc="raise on an input whose name contains this")
    record: str = param("", doc="append the pid of each process() call to this file")


class Parse:
    def __init__(self, scale: float = 1.0, fail_on: str = "", record: str = "") -> None:
        self.scale, self.fail_on, self.record = scale, fail_on, record

    def process(self, inputs: list[str]) -> dict[str, Any]:
        import torch

        for path in inputs:
            if self.fail_on and self.fail_on in Path(path).name:
                raise ValueError(f"cannot parse {Path(path).name}")
        if self.record:
            with open(self.record, "a", encoding="utf-8") as file:
                file.write(f"{os.getpid()}\n")
        values = [float(v) for path in inputs for v in Path(path).read_text(encoding="utf-8").split()]
        x = torch.tensor(values, dtype=torch.float64) * self.scale
        return {"x": x, "square": x * x, "index": torch.arange(len(values))}


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    register("parse", Parse, params=ParseParams)
