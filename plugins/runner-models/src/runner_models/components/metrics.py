"""Names of the whole-epoch metrics the bundled tasks compute (torch-free, for validation)."""

from __future__ import annotations

import re
from typing import Any

from runner import did_you_mean

#: Classification metrics by recipe name (``top<k>_accuracy`` for any k >= 1 as well).
CLASSIFICATION_METRICS = (
    "accuracy",
    "top5_accuracy",
    "precision_macro",
    "precision_micro",
    "recall_macro",
    "recall_micro",
    "f1_macro",
    "f1_micro",
    "auroc",
    "confusion_matrix",
)
#: Regression metrics by recipe name.
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2")
TOP_K = re.compile(r"top([1-9][0-9]*)_accuracy")


def _check(known: tuple[str, ...], pattern: re.Pattern[str] | None) -> Any:
    def check(value: Any) -> str | None:
        for name in value or ():
            if name in known or (pattern is not None and pattern.fullmatch(name)):
                continue
            hint = did_you_mean(name, known)
            return f"unknown metric {name!r}{f' ({hint})' if hint else ''}; known: {', '.join(known)}"
        duplicates = sorted({n for n in value or () if list(value).count(n) > 1})
        return f"metric {duplicates[0]!r} is listed twice" if duplicates else None

    return check


classification_metrics = _check(CLASSIFICATION_METRICS, TOP_K)
regression_metrics = _check(REGRESSION_METRICS, None)
