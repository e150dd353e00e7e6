"""``model_summary``: parameters per module and in all, trainable and frozen.

Printed to stderr when training starts (primary process) and stored in ``summary.json``
(``extras.model_summary``) for every run, so runs can be compared by size afterwards.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from runner import RunContext
from runner_callbacks._model import unwrapped


def count(module: torch.nn.Module) -> tuple[int, int]:
    """``(trainable, frozen)`` parameters of ``module`` (shared parameters counted once)."""
    trainable = frozen = 0
    for parameter in module.parameters():
        if parameter.requires_grad:
            trainable += parameter.numel()
        else:
            frozen += parameter.numel()
    return trainable, frozen


def summarize(model: torch.nn.Module, depth: int = 1) -> dict[str, Any]:
    """Per-module rows (down to ``depth`` levels) and totals, as JSON data."""
    rows = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        if not name or level > depth:
            continue
        trainable, frozen = count(module)
        rows.append({"module": name, "type": type(module).__name__, "trainable": trainable, "frozen": frozen})
    trainable, frozen = count(model)
    return {
        "model": type(model).__name__,
        "total": trainable + frozen,
        "trainable": trainable,
        "frozen": frozen,
        "modules": rows,
    }


def table(summary: dict[str, Any]) -> str:
    """The summary as a plain text table."""
    rows = [("module", "type", "params", "trainable", "frozen")]
    for row in summary["modules"]:
        total = row["trainable"] + row["frozen"]
        rows.append((row["module"], row["type"], f"{total:,}", f"{row['trainable']:,}", f"{row['frozen']:,}"))
    rows.append(
        ("total", summary["model"], f"{summary['total']:,}", f"{summary['trainable']:,}", f"{summary['frozen']:,}")
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            row[1].ljust(widths[1]),
            *(c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0 or index == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


class ModelSummary:
    """Prints the parameter table when training starts and adds it to ``summary.json``."""

    def __init__(self, depth: int = 1, print_table: bool = True) -> None:
        self.depth = depth
        self.print_table = print_table

    def on_begin_train(self, run: RunContext) -> None:
        summary = summarize(unwrapped(run.model), self.depth)
        run.add_summary("model_summary", summary)
        if self.print_table and run.is_primary:
            print(f"model summary:\n{table(summary)}", file=sys.stderr, flush=True)
