"""Jobs handed to worker processes drop their plugin manager when pickled, keep the rest."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from runner._engine.job import Job
from runner._inference.predict import PredictJob


@pytest.mark.parametrize(
    "job",
    [
        Job(recipe=None, run_dir=Path("run"), local_plugins=("toy.py",), restart=2),  # type: ignore[arg-type]
        PredictJob(
            recipe=None,  # type: ignore[arg-type]
            run_dir=Path("run"),
            info={"a": 1},
            split=None,  # type: ignore[arg-type]
            output=Path("out.jsonl"),
            fmt="jsonl",
            which="best",
            local_plugins=("toy.py",),
        ),
    ],
    ids=["train", "predict"],
)
def test_a_pickled_job_loads_its_plugins_again(job: Any) -> None:
    job.plugins = object()  # a loaded manager cannot travel to another process
    copy = pickle.loads(pickle.dumps(job))
    assert copy.plugins is None
    for field in type(job).__attrs_attrs__:
        if field.name != "plugins":
            assert getattr(copy, field.name) == getattr(job, field.name)
