"""Training stages (PyMarlin ``Stage``) and dataset splits (helios ``DatasetSplit``)."""

from __future__ import annotations

import enum

_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}


class Stage(str, enum.Enum):
    """The three stages of a run; also names the split a dataset serves."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"

    @classmethod
    def from_str(cls, label: str) -> Stage:
        """Parse ``train``, ``val``/``valid``/``validation`` or ``test`` (case-insensitive).

        Raises ``ValueError`` listing the accepted spellings for anything else.
        """
        key = _ALIASES.get(label.strip().lower())
        if key is None:
            accepted = ", ".join(sorted(_ALIASES))
            raise ValueError(f"unknown split {label!r}; expected one of: {accepted}")
        return cls(key)

    def __str__(self) -> str:
        return self.value
