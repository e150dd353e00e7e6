"""recipes/streaming.toml end to end: a [[process]] step writes Arrow shards, training
streams them with loader workers, and a run killed mid-epoch resumes to exactly the
uninterrupted run (runner verify-resume, through the checkpointed loader state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyarrow")

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "streaming.toml"


@pytest.mark.slow
def test_streaming_recipe_resumes_exactly_mid_epoch(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli(
        "verify-resume",
        RECIPE,
        "--kill-at",
        "7",  # mid-epoch: 15 steps per epoch
        "-o",
        "run.epochs=1",
        "-o",
        'checkpoint={ name = "default" }',
        "--work-dir",
        tmp_path / "verify",
        cwd=tmp_path,
        env_extra={"OMP_NUM_THREADS": "1", "RUNNER_CACHE_DIR": str(tmp_path / "cache")},
        timeout=600,
    )
    assert result.returncode == 0, str(result)
