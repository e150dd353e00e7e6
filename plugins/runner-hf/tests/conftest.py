"""Fixtures: a generated text dataset with its trained tokenizer, and a private processing cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner_hf.demo import write_demo


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``train.jsonl``, ``val.jsonl`` (3 topics) and ``tokenizer.json`` in a fresh folder."""
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path / "cache"))
    write_demo(tmp_path / "text", train=30, val=9)
    return tmp_path / "text"
