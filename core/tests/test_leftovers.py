"""``runner.testing.no_leftovers``: a test that leaves a process or a /dev/shm entry
behind fails, and what it left is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from runner.testing import no_leftovers

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").exists() and ") Z" in Path(f"/proc/{pid}/stat").read_text():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow  # starts processes
def test_a_process_that_ends_in_time_is_fine() -> None:
    with no_leftovers(grace=10):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    child.wait()  # it had ended (a zombie until reaped, which the check does not count)


@pytest.mark.slow  # starts processes
def test_a_child_left_running_fails_the_test_and_is_killed() -> None:
    with pytest.raises(AssertionError, match="left behind") as caught, no_leftovers(grace=0.5):
        child = subprocess.Popen(SLEEPER)
    assert f"pid {child.pid}" in str(caught.value)
    child.wait(5)  # killed by the check


@pytest.mark.slow  # starts processes
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="environment tags are read from /proc")
def test_an_orphan_is_found_by_the_tag_it_inherited() -> None:
    """A grandchild whose parent exited is re-parented away from the test process: it is
    still the test's, by the environment it was started with."""
    with pytest.raises(AssertionError) as caught, no_leftovers(grace=0.5):
        quiet = "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL"
        parent = subprocess.run(
            [sys.executable, "-c", f"import subprocess; print(subprocess.Popen({SLEEPER!r}, {quiet}).pid)"],
            capture_output=True,
            text=True,
            check=True,
        )
    orphan = int(parent.stdout)
    assert f"pid {orphan}" in str(caught.value)
    assert _gone(orphan)


@pytest.mark.slow  # starts processes
def test_a_process_naming_tmp_path_is_the_tests(tmp_path: Path) -> None:
    """Started outside the block's environment (no tag), found by its command line."""
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_LEFTOVER_TAG"}
    quiet = "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL"
    code = f"import subprocess; subprocess.Popen({[*SLEEPER, str(tmp_path)]!r}, start_new_session=True, {quiet})"
    with pytest.raises(AssertionError, match=str(tmp_path)), no_leftovers(tmp_path, grace=0.5):
        subprocess.run([sys.executable, "-c", code], env=env, check=True)


@pytest.mark.slow  # starts processes
def test_processes_running_before_the_block_are_not_counted() -> None:
    server = subprocess.Popen(SLEEPER)
    try:
        with no_leftovers(grace=0.5):
            pass
    finally:
        server.kill()
        server.wait()


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm here")
def test_a_new_shared_memory_entry_fails_the_test() -> None:
    entry = Path("/dev/shm") / f"runner-test-{uuid.uuid4().hex}"
    try:
        with pytest.raises(AssertionError, match=f"/dev/shm/{entry.name} left behind"), no_leftovers(grace=0.5):
            entry.write_bytes(b"x")
    finally:
        entry.unlink(missing_ok=True)
    with no_leftovers(grace=0.5):  # removed in time: fine
        entry.write_bytes(b"x")
        entry.unlink()
