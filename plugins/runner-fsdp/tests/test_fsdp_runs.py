"""``runner run`` with the fsdp backend: 2-3 worker processes on the CPU (gloo), the way a
user starts them. The local test plugin records which sample indices every rank reads.

- FSDP trains like DDP: the same loss curve, the same final weights.
- A sharded checkpoint written by 2 processes resumes on 1 and on 3, every sample of
  the interrupted epoch read exactly once.
- A byte flipped in a shard is found by ``runner checkpoints verify`` and by the resume,
  which falls back to the previous checkpoint.
- A process killed during an asynchronous sharded save leaves the previous checkpoint as
  ``latest``, loadable.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from fsdp_helpers import clean_env, counts, indices, recipe, records, run_cli, train_losses, write_recipe
from safetensors.torch import load_file

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("runner_leftovers")]

#: 2 ranks x 3 samples, 60 samples: 10 steps per epoch.
STEPS_PER_EPOCH = 10
#: FSDP (reduce-scatter of gradients, sharded AdamW) against DDP (all-reduce, whole AdamW)
#: on the same data: only the float summation order differs (observed: ~1e-7 relative).
LOSS_RTOL = 1e-5


def test_fsdp_trains_like_ddp(tmp_path: Path) -> None:
    for backend in ("ddp", "fsdp"):
        path = write_recipe(tmp_path / f"{backend}.toml", recipe(backend=backend, record=False))
        ran = run_cli("run", path, "--run-dir", tmp_path / backend, "--no-progress")
        assert ran.returncode == 0, ran
    fsdp, ddp = train_losses(tmp_path / "fsdp"), train_losses(tmp_path / "ddp")
    assert len(fsdp) == len(ddp) == 2 * STEPS_PER_EPOCH
    assert fsdp == pytest.approx(ddp, rel=LOSS_RTOL)
    assert fsdp[-1] < fsdp[0] * 0.5  # it learned
    # model.safetensors of the sharded run holds the whole model (gathered), as DDP's does.
    whole, ddp_weights = (
        load_file(tmp_path / "fsdp" / "model.safetensors"),
        load_file(tmp_path / "ddp" / "model.safetensors"),
    )
    assert sorted(whole) == sorted(ddp_weights)
    for key, tensor in whole.items():
        torch.testing.assert_close(tensor, ddp_weights[key], rtol=1e-4, atol=1e-6)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 processes stop after step 4 of 10 in epoch 0 (24 of 60 samples), saving every step."""
    root = tmp_path_factory.mktemp("interrupted")
    tree = recipe(stop_at=4, checkpoint={"every_n_steps": 1, "keep_last": 10})
    ran = run_cli("run", write_recipe(root / "r.toml", tree), "--run-dir", root / "run", "--no-progress")
    assert ran.returncode == 0, ran
    assert [r["step"] for r in records(root / "run") if r["stage"] == "train"] == [1, 2, 3, 4]
    assert sum(counts(indices(root / "run"), 0).values()) == 24
    shards = sorted(p.name for p in (root / "run" / "checkpoints" / "step-000004" / "dcp").iterdir())
    assert shards == ["metadata.json", "rank00000.bin", "rank00001.bin"]
    return root / "run"


@pytest.mark.parametrize("processes", [1, 3])
def test_a_two_process_checkpoint_resumes_on_one_and_three(interrupted: Path, tmp_path: Path, processes: int) -> None:
    """Epoch 0 continues from global sample 24 (runner-ddp's sample position): each sample
    exactly once in epoch 0 (before + after) and in epoch 1; the step count follows."""
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    before = indices(run_dir)
    for path in run_dir.glob("indices-*.txt"):
        path.unlink()
    tree = recipe(nproc=processes, checkpoint={"every_n_steps": 1, "keep_last": 10})
    path = write_recipe(tmp_path / "r.toml", tree)
    # A changed world size changes the global batch: a recipe change (--allow-recipe-change).
    ran = run_cli("run", path, "--run-dir", run_dir, "--resume", "--allow-recipe-change", "--no-progress")
    assert ran.returncode == 0, ran
    assert "resumed from" in ran.stderr and "step-000004" in ran.stderr
    after = indices(run_dir)
    epoch0 = counts(before + after, 0)
    assert sorted(epoch0) == list(range(60)) and set(epoch0.values()) == {1}
    epoch1 = counts(after, 1)
    assert sorted(epoch1) == list(range(60)) and set(epoch1.values()) == {1}
    per_step = 3 * processes
    expected = 4 + -(-36 // per_step) + -(-(60 // processes) // 3)
    assert [r["step"] for r in records(run_dir) if r["stage"] == "train"] == list(range(1, expected + 1))


def test_a_sharded_checkpoints_weights_are_read_whole(interrupted: Path) -> None:
    """``runner predict --checkpoint`` reads a sharded checkpoint's model whole, in one
    process: the weights of step 4 are those of model.safetensors (the run stopped there)."""
    from runner_checkpoint.weights import load_model_weights

    weights = load_model_weights(interrupted / "checkpoints" / "step-000004")
    final = load_file(interrupted / "model.safetensors")
    assert sorted(weights) == sorted(final)
    for key, tensor in final.items():
        assert torch.equal(weights[key], tensor), key


def test_a_flipped_byte_in_a_shard_is_found_and_fallen_back_from(interrupted: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(interrupted, run_dir)
    shard = run_dir / "checkpoints" / "step-000004" / "dcp" / "rank00001.bin"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))

    verify = run_cli("checkpoints", "verify", run_dir)
    assert verify.returncode == 1, verify
    assert "step-000004: DAMAGED" in verify.stdout
    assert "dcp/rank00001.bin: sha256 expected" in verify.stdout
    assert "step-000003: ok" in verify.stdout

    path = write_recipe(tmp_path / "r.toml", recipe(checkpoint={"every_n_steps": 1, "keep_last": 10}))
    ran = run_cli("run", path, "--run-dir", run_dir, "--resume", "--no-progress")
    assert ran.returncode == 0, ran
    assert "step-000004 is damaged and is skipped" in ran.stderr
    assert "dcp/rank00001.bin: sha256 expected" in ran.stderr
    assert "resumed from" in ran.stderr and "step-000003" in ran.stderr
    assert (run_dir / "checkpoints" / "damaged" / "step-000004").is_dir()
    steps = [r["step"] for r in records(run_dir) if r["stage"] == "train"]
    assert steps == list(range(1, 2 * STEPS_PER_EPOCH + 1))


def test_sigkill_during_an_async_sharded_save_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    """Rank 0 SIGKILLs itself inside the second background write (every shard written,
    nothing fsynced or renamed yet); the job fails naming it. ``latest`` still names the
    first checkpoint, which verifies and resumes to the end of the run."""
    tree = recipe(checkpoint={"every_n_steps": 4, "keep_last": 10, "async": True})
    path = write_recipe(tmp_path / "r.toml", tree)
    run_dir = tmp_path / "run"
    env = clean_env(RUNNER_CHECKPOINT_FAULT="before_fsync@2")
    ran = run_cli("run", path, "--run-dir", run_dir, "--no-progress", env=env)
    assert ran.returncode == 2, ran
    assert "rank 0" in ran.stderr and "SIGKILL" in ran.stderr
    checkpoints = run_dir / "checkpoints"
    assert (checkpoints / "latest").read_text().strip() == "step-000004"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-000004"]
    assert run_cli("checkpoints", "verify", run_dir).returncode == 0
    resumed = run_cli("run", path, "--run-dir", run_dir, "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed
    assert "resumed from" in resumed.stderr and "step-000004" in resumed.stderr
    assert [r["step"] for r in records(run_dir) if r["stage"] == "train"][-1] == 2 * STEPS_PER_EPOCH
    assert (checkpoints / "latest").read_text().strip() == f"step-{2 * STEPS_PER_EPOCH:06d}"
