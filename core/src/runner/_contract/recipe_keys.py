"""Names of the recipe's component sections (plain data: cheap to import for completion)."""

from __future__ import annotations

#: Top-level keys holding one component table, and the kind each names.
COMPONENT_TABLES: dict[str, str] = {
    "model": "model",
    "task": "task",
    "optimizer": "optimizer",
    "scheduler": "scheduler",
    "checkpoint": "checkpointer",
    "datamodule": "datamodule",
}
#: Top-level keys holding an array of component tables, and the kind of each item.
COMPONENT_ARRAYS: dict[str, str] = {"callbacks": "callback", "loggers": "logger", "process": "processor"}
