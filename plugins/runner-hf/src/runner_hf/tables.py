"""Local files and folders as Hugging Face ``datasets.Dataset`` objects, memory-mapped.

Parquet, JSON lines, CSV and Arrow files, and folders written by ``save_to_disk``. File
formats are converted once into Arrow files in the datasets cache and memory-mapped from
there (Arrow files and ``save_to_disk`` folders are mapped where they lie), so a dataset
larger than memory trains. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from runner import DataError
from runner_hf.offline import datasets

Format = Literal["auto", "parquet", "json", "csv", "arrow", "disk"]
SUFFIXES = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".arrow": "arrow"}


def detect_format(path: Path) -> str:
    """The format of ``path`` from its suffix, or ``disk`` for a ``save_to_disk`` folder."""
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return "disk"
        raise DataError(
            f"{path}: a folder must be one written by save_to_disk (dataset_info.json or dataset_dict.json)"
        )
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}; set format to parquet, json, csv or arrow"
        )
    return fmt


def load_local(path: str | Path, fmt: Format = "auto", split: str = "train", cache_dir: str | None = None) -> Any:
    """The ``datasets.Dataset`` in the local file or folder ``path`` (``split`` of a DatasetDict folder)."""
    location = Path(path).expanduser()
    if not location.exists():
        raise DataError(f"{location}: no such file or folder (runner-hf reads local data only, nothing is downloaded)")
    kind = detect_format(location) if fmt == "auto" else fmt
    hf = datasets()
    try:
        if kind == "disk":
            loaded = hf.load_from_disk(str(location))
            if isinstance(loaded, hf.DatasetDict):
                if split not in loaded:
                    raise DataError(f"{location}: no split {split!r}; it has {', '.join(loaded)}")
                loaded = loaded[split]
            return loaded
        if kind == "arrow":
            return hf.Dataset.from_file(str(location))
        return hf.load_dataset(kind, data_files=str(location), split="train", cache_dir=cache_dir)
    except DataError:
        raise
    except Exception as exc:  # pyarrow and datasets raise many types for malformed files
        detail = str(exc).strip().splitlines()
        raise DataError(
            f"{location}: cannot read as {kind}: {type(exc).__name__}: {detail[0] if detail else ''}"
        ) from None
