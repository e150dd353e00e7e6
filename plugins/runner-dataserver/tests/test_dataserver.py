"""The async loader: same batches as the standard loader, faults, remote mode, cleanup."""

from __future__ import annotations

import os
import pickle
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import ds_toy
import pytest
import torch

import runner_models.plugin
from runner import BuildContext
from runner._data.build import build_dataset, build_loader
from runner._plugins.registry import resolve_reference
from runner.testing import assert_entry_module_torch_free
from runner_dataserver import plugin
from runner_dataserver.loader import AsyncLoader, DataServerError
from runner_dataserver.params import AsyncLoaderParams

# Servers are processes: none may outlive its test, nor leave a /dev/shm segment.
pytestmark = pytest.mark.usefixtures("runner_leftovers")

RECIPE = """
[run]
epochs = 2

[data.train]
dataset = {{ name = "dst_{dataset}", n = {n} {extra} }}
loader = {{ batch_size = {batch}, shuffle = true, drop_last = {drop_last} {loader} }}

[model]
name = "mlp"
hidden = []

[task]
name = "classification"

[optimizer]
name = "sgd"
lr = 0.1
"""


def shm() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def no_new_segments(before: set[str]) -> bool:
    """No shared-memory entry appeared since ``before`` (other processes' transient ones
    must vanish within a few seconds)."""
    deadline = time.monotonic() + 5
    while shm() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    return not shm() - before


def make(
    tester: Any,
    *,
    dataset: str = "numbers",
    n: int = 50,
    batch: int = 4,
    loader: str = "",
    extra: str = "",
    drop_last: str = "false",
) -> Any:
    text = RECIPE.format(dataset=dataset, n=n, batch=batch, loader=loader, extra=extra, drop_last=drop_last)
    recipe, manager = tester.recipe(text, ds_toy, plugin, runner_models.plugin)
    assert recipe is not None
    ctx = BuildContext(recipe=recipe, seed=recipe.run.seed, run_dir=tester.tmp_path)
    dataset_obj = build_dataset(recipe.train, manager.registry, ctx)
    return build_loader(recipe.train, dataset_obj, manager.registry, ctx, train=True, on_cuda=False)


def epoch(loader: Any, number: int, skip: int = 0) -> list[list[torch.Tensor]]:
    loader.set_epoch(number)
    if skip:
        loader.skip(skip)
    return [[torch.as_tensor(t) for t in batch] for batch in loader]


def same(a: list[list[torch.Tensor]], b: list[list[torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(
        len(x) == len(y) and all(torch.equal(s, t) for s, t in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() for pid in pids):
            return True
        time.sleep(0.05)
    return False


def server_pids(loader: AsyncLoader) -> list[int]:
    return [s.process.pid for s in loader.servers if s.process is not None]


@pytest.mark.slow  # starts processes
def test_entry_module_is_torch_free_and_registers_lazily() -> None:
    assert_entry_module_torch_free("runner_dataserver.plugin", also=("runner_dataserver.params",))
    found: dict[str, Any] = {}

    def register(name: str, factory: Any, *, params: type | str | None = None, doc: str | None = None) -> None:
        found[name] = (factory, params, doc)

    plugin.register_loaders(register=register)
    factory, params, doc = found["async"]
    assert factory == "runner_dataserver.params:AsyncLoaderParams" and params is None and doc is None
    assert resolve_reference(factory) is AsyncLoaderParams


def test_recipe_rejects_unknown_loader_keys(runner_tester: Any) -> None:
    text = RECIPE.format(
        dataset="numbers", n=8, batch=2, loader=', name = "async", servrs = 2', extra="", drop_last="false"
    )
    path = runner_tester.tmp_path / "bad.toml"
    path.write_text(text)
    from runner._recipe.source import read_recipe
    from runner._recipe.validate import validate

    manager = runner_tester.plugin_manager(ds_toy, plugin, runner_models.plugin)
    with pytest.raises(Exception, match="servrs"):
        validate(read_recipe(path), manager.registry, manager.failures)


@pytest.mark.slow  # starts data server processes
@pytest.mark.parametrize(("servers", "dataset"), [(1, "toy"), (2, "numbers"), (3, "numbers")])
def test_same_batches_as_standard_loader_with_resume(runner_tester: Any, servers: int, dataset: str) -> None:
    before = shm()
    standard = make(runner_tester, dataset=dataset, n=50)
    loader = make(runner_tester, dataset=dataset, n=50, loader=f', name = "async", servers = {servers}, prefetch = 2')
    assert isinstance(loader, AsyncLoader)
    try:
        assert len(loader) == len(standard) == 13
        assert loader.dataset.meta["in_features"] in (2, 4)
        for number in (0, 1):
            assert same(epoch(loader, number), epoch(standard, number))
        # mid-epoch resume: the checkpointed state of a pass stopped after 5 batches
        standard.set_epoch(1)
        state = standard.state_dict()
        assert same(epoch(loader, 1, skip=5), epoch(standard, 1, skip=5))
        resumed = make(runner_tester, dataset=dataset, n=50, loader=f', name = "async", servers = {servers}')
        resumed.load_state_dict(state, batches_consumed=5)
        assert resumed.state_dict() == state
        standard.load_state_dict(state, batches_consumed=5)
        assert same(list(resumed), list(standard))
        resumed.close()
        # an abandoned pass does not leak into the next one
        iterator = iter(loader)
        next(iterator)
        del iterator
        assert same(epoch(loader, 0), epoch(standard, 0))
        pids = server_pids(loader)
    finally:
        loader.close()
    assert gone(pids)
    assert no_new_segments(before)


@pytest.mark.slow  # starts data server processes
def test_server_crash_restart_delivers_every_sample_once(runner_tester: Any, tmp_path: Path) -> None:
    before = shm()
    marker = tmp_path / "crashed"
    extra = f', crash_at = 17, marker = "{marker}"'
    loader = make(runner_tester, n=40, extra=extra, loader=', name = "async", servers = 2, on_server_error = "restart"')
    standard = make(runner_tester, n=40)
    try:
        batches = epoch(loader, 0)
        assert marker.exists() and loader.restarts == 1
        assert "exited with code 3" in loader.failures[0] and "data server" in loader.failures[0]
        assert same(batches, epoch(standard, 0))
        seen = sorted(int(v) for b in batches for v in b[0][:, 0].tolist())
        assert seen == list(range(40))
        pids = server_pids(loader)
    finally:
        loader.close()
    assert gone(pids)
    assert no_new_segments(before)


@pytest.mark.slow  # starts data server processes
def test_server_crash_stop_is_a_clear_error(runner_tester: Any, tmp_path: Path) -> None:
    before = shm()
    extra = f', crash_at = 17, marker = "{tmp_path / "crashed"}"'
    loader = make(runner_tester, n=40, extra=extra, loader=', name = "async", servers = 2, on_server_error = "stop"')
    pids = server_pids(loader)
    with pytest.raises(DataServerError, match=r"data server \d \(pid \d+\) failed: process exited with code 3"):
        epoch(loader, 0)
    assert gone(pids)
    assert no_new_segments(before)


@pytest.mark.slow  # starts data server processes
def test_exception_in_server_is_reported(runner_tester: Any) -> None:
    loader = make(runner_tester, n=20, extra=", fail_at = 6", loader=', name = "async", servers = 1')
    pids = server_pids(loader)
    with pytest.raises(DataServerError, match="ValueError: sample 6 is broken"):
        epoch(loader, 0)
    assert gone(pids)


def _serve(tmp_path: Path, token: str, *options: str) -> tuple[subprocess.Popen[str], str]:
    recipe = tmp_path / "serve.toml"
    text = RECIPE.format(dataset="numbers", n=30, batch=4, loader="", extra="", drop_last="false")
    recipe.write_text(f'plugins = ["{Path(ds_toy.__file__)}"]\n' + text)
    env = {**os.environ, "RUNNER_DATASERVER_TOKEN": token}
    runner = Path(sys.executable).parent / "runner"
    process = subprocess.Popen(
        [str(runner), "serve-data", str(recipe), "--split", "train", "--bind", "127.0.0.1:0", *options],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    if "serving 30 samples at" not in line:
        process.kill()
        _, rest = process.communicate(timeout=10)
        pytest.fail(f"serve-data did not start: {line}{rest}")
    return process, line.rsplit(" ", 1)[-1].strip()


@pytest.mark.slow  # starts processes
def test_remote_server_over_loopback(runner_tester: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    process, address = _serve(tmp_path, "s3cret")
    try:
        monkeypatch.setenv("RUNNER_DATASERVER_TOKEN", "s3cret")
        loader = make(runner_tester, n=30, loader=f', name = "async", servers = ["{address}"]')
        standard = make(runner_tester, n=30)
        with loader:
            assert same(epoch(loader, 1), epoch(standard, 1))
        monkeypatch.setenv("RUNNER_DATASERVER_TOKEN", "wrong")
        with pytest.raises(DataServerError, match="cannot connect"):
            make(runner_tester, n=30, loader=f', name = "async", servers = ["{address}"]')
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 15)
        refused = process.stderr.readline() if ready else ""
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    assert "refused a connection" in refused


@pytest.fixture(scope="module")
def hardened_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """One ``serve-data`` process (token ``s3cret``, 2 s handshake timeout) for the hostile-client tests."""
    process, address = _serve(tmp_path_factory.mktemp("serve"), "s3cret", "--handshake-timeout", "2")
    try:
        yield process, address
    finally:
        process.terminate()
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()


def _hello(address: str, token: bytes = b"s3cret") -> Any:
    """Connect as a trainer does and return the server's first message."""
    host, port = address.rsplit(":", 1)
    with Client((host, int(port)), authkey=token) as conn:
        return pickle.loads(conn.recv_bytes())


def _hello_within(address: str, seconds: float) -> Any:
    """``_hello`` in a thread: its answer, or None if none came within ``seconds`` (the
    thread ends when the server does)."""
    answers: list[Any] = []
    thread = threading.Thread(target=lambda: answers.append(_hello(address)), daemon=True)
    thread.start()
    thread.join(seconds)
    return answers[0] if answers else None


def _raw(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _reported(process: subprocess.Popen[str], text: str, within: float = 10) -> str:
    """The first line the server prints from now that contains ``text`` ("" if none within ``within`` s)."""
    assert process.stderr is not None
    deadline = time.monotonic() + within
    while select.select([process.stderr], [], [], max(0, deadline - time.monotonic()))[0]:
        line = process.stderr.readline()
        if text in line or not line:
            return line
    return ""


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Read (and drop) what the server sends until it closes the connection."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


@pytest.mark.slow
def test_silent_connection_neither_blocks_others_nor_stays(hardened_server: tuple[Any, str]) -> None:
    process, address = hardened_server
    with _raw(address) as silent:
        opened = started = time.monotonic()
        hello = _hello_within(address, 5)
        assert hello is not None, "a silent connection stopped the server from serving others"
        assert hello[:2] == ("ready", 30) and time.monotonic() - started < 5
        assert _closed_by_server(silent, within=10), "the silent connection was never closed"
        assert 1.5 < time.monotonic() - opened < 10
    assert _reported(process, "no handshake within 2 s").startswith("refused a connection from 127.0.0.1:")


@pytest.mark.slow
def test_hostile_connections_are_refused_and_others_served(hardened_server: tuple[Any, str]) -> None:
    _, address = hardened_server
    opened: list[socket.socket] = []
    try:
        garbage, huge = _raw(address), _raw(address)
        opened += [garbage, huge]
        for _ in range(50):  # silent connections, open while the others connect
            opened.append(_raw(address))
        garbage.sendall(b"\x00\x00\x00\x10" + os.urandom(16))  # a well-framed wrong answer
        huge.sendall(struct.pack("!i", 2**31 - 1))  # announces a 2 GB message
        assert _closed_by_server(garbage, within=5) and _closed_by_server(huge, within=5)
        with ThreadPoolExecutor(50) as pool:
            hellos = list(pool.map(lambda _: _hello_within(address, 20), range(50)))
        assert all(h is not None and h[:2] == ("ready", 30) for h in hellos)
        with pytest.raises(Exception, match="digest"):
            _hello(address, token=b"wrong")
    finally:
        for sock in opened:
            sock.close()


@pytest.mark.slow  # starts data server processes
def test_trains_a_recipe(runner_tester: Any) -> None:
    text = RECIPE.format(
        dataset="toy", n=64, batch=8, loader=', name = "async", servers = 2', extra="", drop_last="false"
    )
    outcome = runner_tester.run(text, ds_toy, plugin, runner_models.plugin, max_steps=6)
    assert outcome.result is not None
    assert 'name = "async"' in (outcome.run_dir / "recipe.toml").read_text()


@pytest.mark.slow  # starts processes
def test_ctrl_c_leaves_no_processes_or_segments(tmp_path: Path) -> None:
    before = shm()
    script = tmp_path / "interrupt.py"
    script.write_text(
        f"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, even if started with SIGINT ignored
sys.path.insert(0, {str(Path(__file__).parent)!r})
from runner.testing import RunnerTester
from pathlib import Path
import test_dataserver as t
if __name__ == "__main__":
    loader = t.make(RunnerTester(Path({str(tmp_path)!r})), n=200, loader=', name = "async", servers = 2')
    print(" ".join(map(str, t.server_pids(loader))), flush=True)
    for i, batch in enumerate(loader):
        if i == 3:
            os.kill(os.getpid(), signal.SIGINT)
"""
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" in result.stderr
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2 and gone(pids)
    assert no_new_segments(before)
