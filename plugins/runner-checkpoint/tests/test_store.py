"""Crash-safe commit, the latest pointer, fault injection at every phase, retention."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from ckpt_helpers import isolate_process_state  # noqa: F401 (fixture)

from runner_checkpoint import checkpoint, faults
from runner_checkpoint.manifest import verify
from runner_checkpoint.store import Store


class Crash(Exception):
    """Stands in for the process dying at a fault point."""


def small_state(step: int) -> dict[str, Any]:
    return {"model": {"w": torch.full((3,), float(step))}, "counters": {"global_step": step}}


def save(store: Store, step: int, value: float | None = None) -> str:
    monitor = {"name": "val/main/accuracy", "mode": "max", "value": value} if value is not None else None
    meta = {"step": step, "epoch": 0, "monitor": monitor}
    return checkpoint.save(store, small_state(step), step=step, meta=meta, provenance={"recipe": {}}).name


def crash_at(phase: str) -> None:
    def hook(reached: str) -> None:
        if reached == phase:
            raise Crash(phase)

    faults.hook = hook


def resumable(store: Store) -> tuple[str, int]:
    """Name and step of what a resume would load (the first valid candidate)."""
    candidates, _ = store.resume_candidates()
    for entry in candidates:
        try:
            loaded = checkpoint.load(entry.path)
        except Exception:
            continue
        return loaded.name, loaded.state["counters"]["global_step"]
    raise AssertionError("nothing loads")


def valid_names(store: Store) -> set[str]:
    return {e.name for e in store.entries() if not verify(e.path)}


def test_save_commit_and_latest(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoints")
    assert [save(store, s) for s in (3, 6, 6)] == ["step-000003", "step-000006", "step-000006-2"]
    assert store.latest_name() == "step-000006-2"
    assert [e.seq for e in store.entries()] == [1, 2, 3]
    assert resumable(store) == ("step-000006-2", 6)
    assert sorted(p.name for p in store.root.iterdir()) == ["latest", "step-000003", "step-000006", "step-000006-2"]


@pytest.mark.parametrize("phase", faults.PHASES)
def test_a_crash_at_any_phase_keeps_the_last_good_checkpoint(tmp_path: Path, phase: str) -> None:
    store = Store(tmp_path / "checkpoints")
    for step in (1, 2, 3):
        save(store, step)
        store.prune(keep_last=2)
    before = valid_names(store)
    assert before == {"step-000002", "step-000003"}
    crash_at(phase)
    with pytest.raises(Crash):
        save(store, 4)
        store.prune(keep_last=2)
    faults.hook = None
    committed = phase in ("after_pointer_update", "during_prune")
    assert resumable(store) == (("step-000004", 4) if committed else ("step-000003", 3))
    # Nothing valid was deleted, except what retention meant to delete once 4 was committed.
    after = valid_names(store)
    expected_gone = {"step-000002"} if phase == "during_prune" else set()
    assert before - after == expected_gone
    # The next run cleans up what the crash left and carries on normally.
    store.cleanup()
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]
    assert valid_names(store) == after
    save(store, 5)
    store.prune(keep_last=2)
    assert resumable(store) == ("step-000005", 5)
    # A directory renamed into place whose pointer update never happened is complete: it
    # is kept, and once a newer checkpoint is committed it counts as an older one.
    never_renamed = phase in ("before_fsync", "after_temp_write")
    assert valid_names(store) == ({"step-000003"} if never_renamed else {"step-000004"}) | {"step-000005"}


_KILL_SCRIPT = """
import hashlib, sys
from pathlib import Path
from runner_checkpoint.store import Store

def writer(step):
    def write_files(directory):
        data = str(step).encode()
        (directory / "state.json").write_bytes(data)
        return {"state.json": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}}
    return write_files

store = Store(Path(sys.argv[1]))
for step in range(1, 5):
    store.commit(step, writer(step), {"step": step})
    store.prune(keep_last=2)
"""


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    ("fault", "expected"), [("after_temp_write@3", 2), ("after_pointer_tmp@3", 2), ("during_prune@2", 4)]
)
def test_sigkill_inside_the_write(tmp_path: Path, fault: str, expected: int) -> None:
    """The real thing: the process SIGKILLs itself at the fault point (the store needs no torch)."""
    root = tmp_path / "checkpoints"
    env = {**os.environ, faults.ENV: fault}
    done = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(root)], env=env, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    store = Store(root)
    assert store.latest_name() == f"step-{expected:06d}"
    assert (root / store.latest_name() / "state.json").read_text() == str(expected)
    assert valid_names(store) >= {f"step-{expected:06d}", f"step-{expected - 1:06d}"}
    store.cleanup()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_retention_keeps_last_and_best_under_repeated_saves(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoints")
    values = [0.5, 0.9, 0.3, 0.95, 0.1, 0.2, 0.7, 0.6, 0.65, 0.4]
    history: list[tuple[str, float]] = []
    for step, value in enumerate(values, start=1):
        name = save(store, step, value)
        history.append((name, value))
        store.prune(keep_last=2, keep_best=2, monitor="val/main/accuracy", mode="max")
        last = {n for n, _ in history[-2:]}
        best = {n for n, _ in sorted(history, key=lambda item: -item[1])[:2]}
        assert valid_names(store) == last | best, step
        assert store.latest_name() == name
    assert valid_names(store) == {"step-000009", "step-000010", "step-000002", "step-000004"}


def test_retention_min_mode_and_latest_always_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoints")
    for step, value in enumerate([3.0, 1.0, 2.0, 5.0], start=1):
        save(store, step, value)
        store.prune(keep_last=0, keep_best=1, monitor="val/main/accuracy", mode="min")
    assert valid_names(store) == {"step-000002", "step-000004"}


def test_retention_never_touches_uncommitted_or_unreadable(tmp_path: Path) -> None:
    store = Store(tmp_path / "checkpoints")
    for step in (1, 2):
        save(store, step)
    crash_at("before_pointer_update")
    with pytest.raises(Crash):
        save(store, 3)
    faults.hook = None
    (store.root / "step-000002" / "manifest.json").write_text("{", encoding="utf-8")
    assert store.latest_name() == "step-000002"
    assert store.prune(keep_last=0) == []  # the latest's manifest is unreadable: delete nothing
    (store.root / "latest").write_text("step-000001\n", encoding="utf-8")
    assert store.prune(keep_last=0) == []
    assert {p.name for p in store.root.iterdir()} >= {"step-000001", "step-000002", "step-000003"}
