"""hf_dataset on local files of every supported format, generated here; errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from runner import DataError
from runner_hf.components import HFDataset
from runner_hf.offline import datasets


@pytest.fixture
def table() -> object:
    hf = datasets()
    features = hf.Features(
        {"text": hf.Value("string"), "ids": hf.Sequence(hf.Value("int64")), "label": hf.ClassLabel(names=["no", "yes"])}
    )
    return hf.Dataset.from_dict({"text": ["a b", "c"], "ids": [[1, 2], [3]], "label": [1, 0]}, features=features)


@pytest.mark.parametrize("suffix", ["parquet", "jsonl", "csv"])
def test_files_by_suffix(tmp_path: Path, table: object, suffix: str) -> None:
    path = tmp_path / f"rows.{suffix}"
    plain = table.remove_columns("ids") if suffix == "csv" else table  # type: ignore[attr-defined]
    {"parquet": plain.to_parquet, "jsonl": plain.to_json, "csv": plain.to_csv}[suffix](str(path))
    dataset = HFDataset(path=str(path), cache_dir=str(tmp_path / "hf")).build()
    assert len(dataset) == 2 and dataset[0]["text"] == "a b" and dataset[0]["label"] == 1
    assert dataset.meta["num_classes"] == 2
    if suffix != "csv":
        assert torch.equal(dataset[0]["ids"], torch.tensor([1, 2]))


def test_save_to_disk_folders_and_arrow_files_are_memory_mapped(tmp_path: Path, table: object) -> None:
    hf = datasets()
    hf.DatasetDict({"train": table, "test": table.select([1])}).save_to_disk(str(tmp_path / "dict"))  # type: ignore[attr-defined]
    test = HFDataset(path=str(tmp_path / "dict"), split="test", columns=["label"]).build()
    assert len(test) == 1 and test[0] == {"label": 0} and test.meta["classes"] == ["no", "yes"]
    assert test.table.cache_files  # backed by Arrow files on disk, not a copy in memory
    arrow = next(Path(f["filename"]) for f in test.table.cache_files)
    assert len(HFDataset(path=str(arrow)).build()) == 1
    with pytest.raises(DataError, match="no split 'val'; it has train, test"):
        HFDataset(path=str(tmp_path / "dict"), split="val").build()


def test_errors_are_one_line(tmp_path: Path, table: object) -> None:
    with pytest.raises(DataError, match=r"no such file or folder .*nothing is downloaded"):
        HFDataset(path=str(tmp_path / "missing.parquet")).build()
    (tmp_path / "rows.txt").write_text("x")
    with pytest.raises(DataError, match=r"cannot tell the format from the suffix '\.txt'"):
        HFDataset(path=str(tmp_path / "rows.txt")).build()
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read as parquet"):
        HFDataset(path=str(tmp_path / "bad.parquet"), cache_dir=str(tmp_path / "hf")).build()
    table.to_parquet(str(tmp_path / "ok.parquet"))  # type: ignore[attr-defined]
    with pytest.raises(DataError, match=r"no column \['txt'\]"):
        HFDataset(path=str(tmp_path / "ok.parquet"), columns=["txt"], cache_dir=str(tmp_path / "hf")).build()


def test_the_hub_is_off() -> None:
    datasets()
    assert all(os.environ[name] == "1" for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))
