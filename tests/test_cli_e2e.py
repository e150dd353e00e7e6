"""``runner run recipes/digits.toml``, exactly as the README tells a new user, twice.

The two runs happen at once (in separate working directories) to keep the suite fast;
they must still produce byte-identical ``metrics.jsonl`` files.
"""

from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DIGITS = Path(__file__).resolve().parents[1] / "recipes" / "digits.toml"

pytestmark = pytest.mark.slow


@attrs.frozen
class DigitsRun:
    result: Any
    cwd: Path
    name: str

    @property
    def run_dir(self) -> Path:
        return self.cwd / "runs" / self.name

    @property
    def metrics_bytes(self) -> bytes:
        return (self.run_dir / "metrics.jsonl").read_bytes()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.metrics_bytes.decode("utf-8").splitlines()]


@pytest.fixture(scope="module")
def digits_runs(run_cli, tmp_path_factory: pytest.TempPathFactory) -> list[DigitsRun]:
    """Two full default runs of the digits recipe, each from its own working directory."""
    assert DIGITS.is_file(), f"{DIGITS} is missing"
    with DIGITS.open("rb") as f:
        name = tomllib.load(f).get("run", {}).get("name", "run")
    cwds = [tmp_path_factory.mktemp(f"digits-{i}") for i in range(2)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda cwd: run_cli("run", DIGITS, cwd=cwd, timeout=600), cwds))
    for result in results:
        assert result.returncode == 0, str(result)
    return [DigitsRun(result, cwd, name) for result, cwd in zip(results, cwds, strict=True)]


def test_full_run_reaches_95_percent_val_accuracy(digits_runs: list[DigitsRun]) -> None:
    vals = [r for r in digits_runs[0].records if r["stage"] == "val" and r["key"] == "main"]
    assert vals, digits_runs[0].records
    assert vals[-1]["accuracy"] >= 0.95, vals[-1]


def test_metrics_records_have_the_documented_fields(digits_runs: list[DigitsRun]) -> None:
    records = digits_runs[0].records
    stages = [r["stage"] for r in records]
    assert "train" in stages and "val" in stages, stages
    assert set(stages) <= {"train", "val", "test"}, set(stages)
    for record in records:
        for field in ("stage", "epoch", "step", "loss", "accuracy"):
            assert field in record, record
        assert isinstance(record["epoch"], int) and isinstance(record["step"], int), record
        assert 0.0 <= record["accuracy"] <= 1.0, record
        if record["stage"] == "train":
            assert "key" not in record, record
        else:
            assert record["key"] == "main", record
    steps = [r["step"] for r in records]
    assert steps == sorted(steps), "records are written in step order"


def test_identical_runs_write_byte_identical_metrics(digits_runs: list[DigitsRun]) -> None:
    first, second = digits_runs
    assert first.metrics_bytes, "empty metrics.jsonl"
    assert first.metrics_bytes == second.metrics_bytes


def test_prints_a_one_line_summary(digits_runs: list[DigitsRun]) -> None:
    run = digits_runs[0]
    lines = run.result.stdout.splitlines()
    assert len(lines) == 1, str(run.result)
    records = run.records
    last_val = [r for r in records if r["stage"] == "val" and r["key"] == "main"][-1]
    pattern = (
        rf"{re.escape(run.name)}: (?P<steps>\d+) steps, (?P<epochs>\d+) epochs in \d+\.\ds"
        rf"; val/main loss (?P<loss>\d+\.\d{{4}}), accuracy (?P<accuracy>\d\.\d{{4}})"
        rf"(; test/main [^;]*)?"
        rf" -> {re.escape(str(Path('runs') / run.name))}"
    )
    match = re.fullmatch(pattern, lines[0])
    assert match, (lines[0], pattern)
    assert int(match["steps"]) == max(r["step"] for r in records)
    assert int(match["epochs"]) == max(r["epoch"] for r in records) + 1
    assert match["loss"] == f"{last_val['loss']:.4f}" and match["accuracy"] == f"{last_val['accuracy']:.4f}"
    summary = json.loads((run.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == int(match["steps"]) and summary["stop_reason"] == ""
