"""runner-ray without a Ray cluster: registration, recipe validation, error messages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from runner import RecipeError, RunnerError
from runner._plugins.manager import PluginManager
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner_ray.backend import RankError, worker_failure
from runner_ray.executor import ship_by_value

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parents[2] / "recipes" / "digits.toml"


@pytest.mark.slow  # starts processes
def test_components_register_without_importing_ray_or_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        from runner._plugins.manager import PluginManager
        registry = PluginManager().load().registry
        assert registry.find("executor", "ray") is not None and registry.find("backend", "ray") is not None
        registry.find("executor", "ray").schema, registry.find("backend", "ray").schema
        print(sorted(m for m in ("ray", "torch") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_backend_parameters_are_validated_with_suggestions() -> None:
    manager = PluginManager().load()
    source = read_recipe(
        DIGITS, ("run.backend=ray", "backend.num_worker=2", "backend.cpus_per_worker=0", "backend.address='x y'")
    )
    with pytest.raises(RecipeError) as caught:
        validate(source, manager.registry, manager.failures)
    text = str(caught.value)
    assert "backend.num_worker: unknown key (did you mean 'num_workers'" in text
    assert "backend.cpus_per_worker" in text and "greater than 0" in text
    assert "backend.address" in text


def test_executor_table_is_validated(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        textwrap.dedent(
            f"""
            plugins = ["{HERE / "ray_processor.py"}"]
            [[process]]
            name = "parse"
            executor = {{ name = "ray", cpus_per_tsk = 1, max_retries = -1 }}
            """
        ),
        encoding="utf-8",
    )
    manager = PluginManager(local_plugins=[str(HERE / "ray_processor.py")]).load()
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(recipe), manager.registry, manager.failures)
    text = str(caught.value)
    assert "process[0].executor.cpus_per_tsk: unknown key (did you mean 'cpus_per_task'?)" in text
    assert "process[0].executor.max_retries" in text


@pytest.mark.slow  # starts processes
def test_missing_ray_is_one_line_with_the_install_command(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None  # as if Ray were not installed
        from runner._cli.main import main
        sys.exit(main(["run", sys.argv[1], "-o", "run.backend=ray", "--run-dir", sys.argv[2]]))
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", code, str(DIGITS), str(tmp_path / "run")], capture_output=True, text=True
    )
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs Ray" in lines[0] and "pip install 'runner-ray[ray]'" in lines[0], ran.stderr


class _GroupError(Exception):
    def __init__(self, failures: dict[int, BaseException]) -> None:
        super().__init__("Training failed due to worker errors")
        self.worker_failures = failures


def test_worker_failures_become_one_line_naming_the_rank() -> None:
    error = worker_failure(_GroupError({1: ValueError("boom\nat step 3"), 2: ValueError("boom")}))
    assert str(error) == "rank 1 failed: ValueError: at step 3 (rank 2 failed too)"
    assert str(worker_failure(_GroupError({0: RankError(0, "bad data in batch 2")}))) == "rank 0: bad data in batch 2"
    assert isinstance(worker_failure(RuntimeError("no cluster\ndetails")), RunnerError)
    assert str(worker_failure(RuntimeError("no cluster\ndetails"))) == "ray training failed: RuntimeError: no cluster"


def test_rank_error_pickles() -> None:
    import pickle

    error = pickle.loads(pickle.dumps(RankError(3, "message")))
    assert (error.rank, error.message, str(error)) == (3, "message", "message")


def test_file_plugins_are_shipped_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    ray_cloudpickle = pytest.importorskip("ray.cloudpickle", reason="Ray is not installed")
    registered: list[str] = []
    monkeypatch.setattr(ray_cloudpickle, "register_pickle_by_value", lambda module: registered.append(module.__name__))
    module = type(sys)("runner_ray_test_unimportable")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ship_by_value(module.__name__)
    ship_by_value("runner_ray.params")  # installed: imported by name in the workers
    assert registered == ["runner_ray_test_unimportable"]


class _FakeRay:
    def __init__(self, **resources: float) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return dict(self.resources)


def _backend(**params: Any) -> Any:
    from runner_ray.params import RayBackendParams

    return RayBackendParams(**params).build()


def test_device_choice_against_the_clusters_gpus() -> None:
    cpu_only, two_gpus = _FakeRay(CPU=8), _FakeRay(CPU=8, GPU=2)
    backend = _backend(num_workers=2)
    assert backend._use_gpu(cpu_only, "auto") is False
    assert backend._use_gpu(two_gpus, "auto") is True
    assert backend._use_gpu(two_gpus, "cpu") is False
    assert backend._use_gpu(two_gpus, "cuda") is True
    with pytest.raises(RunnerError, match=r"needs 2 GPUs \(num_workers x gpus_per_worker\) but the Ray cluster has 0"):
        backend._use_gpu(cpu_only, "cuda")
    with pytest.raises(RunnerError, match="Ray assigns each worker its GPU"):
        backend._use_gpu(two_gpus, "cuda:1")
    assert _backend(num_workers=3)._use_gpu(two_gpus, "auto") is False  # not enough for every worker


def test_resources_are_checked_before_anything_is_placed() -> None:
    backend = _backend(num_workers=4, cpus_per_worker=2, resources_per_worker={"accel": 1})
    with pytest.raises(RunnerError) as caught:
        backend._check_resources(_FakeRay(CPU=6), use_gpu=False)
    assert "cannot place 4 workers: they need CPU 8 (has 6), accel 4 (has 0)" in str(caught.value)
    backend._check_resources(_FakeRay(CPU=8, accel=4), use_gpu=False)
    with pytest.raises(RunnerError, match=r"GPU 4 \(has 2\)"):
        backend._check_resources(_FakeRay(CPU=8, accel=4, GPU=2), use_gpu=True)


@pytest.mark.slow  # starts processes
def test_fewer_local_cpus_than_the_workers_need_is_refused_before_ray_starts(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["ray"] = None  # proves the check runs before Ray is needed
        from runner._cli.main import main
        sys.exit(main(["run", sys.argv[1], "-o", "run.backend=ray", "-o", "backend.local_cpus=1",
                       "--run-dir", sys.argv[2]]))
        """
    )
    ran = subprocess.run(
        [sys.executable, "-c", code, str(DIGITS), str(tmp_path / "run")], capture_output=True, text=True
    )
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip() == (
        "error: [backend] local_cpus = 1 is fewer than the 2 CPUs the workers need "
        "(num_workers = 2 x cpus_per_worker = 1)"
    )


def test_the_dead_worker_is_named_not_the_peer_that_lost_it() -> None:
    class ActorDiedError(Exception):
        pass

    failures: dict[int, BaseException] = {
        0: RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer"),
        1: ActorDiedError("The actor died unexpectedly before finishing this task."),
    }
    assert str(worker_failure(_GroupError(failures))).startswith("rank 1 failed: ActorDiedError: The actor died")
    failures[0] = RankError(0, "bad batch")
    assert str(worker_failure(_GroupError(failures))) == "rank 0: bad batch"


def test_reserved_resource_names_are_refused_in_resources_per_worker() -> None:
    manager = PluginManager().load()
    source = read_recipe(DIGITS, ("run.backend=ray", "backend.resources_per_worker={ GPU = 1, accel = 2 }"))
    with pytest.raises(RecipeError) as caught:
        validate(source, manager.registry, manager.failures)
    assert "backend.resources_per_worker: must not name GPU (use gpus_per_worker)" in str(caught.value)


# -- joining a cluster that does not answer ----------------------------------------------


def _closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unreachable_run(tmp_path: Path, component: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """``runner run`` (the ray backend) or ``runner process`` (the ray executor) with
    ``$RAY_ADDRESS`` naming a closed local port."""
    address = f"127.0.0.1:{_closed_port()}"
    runner = str(Path(sys.executable).parent / "runner")
    if component == "backend":
        args = [runner, "run", str(DIGITS), "-o", "run.backend=ray", "--run-dir", str(tmp_path / "run")]
    else:
        (tmp_path / "in.txt").write_text("1 2 3", encoding="utf-8")
        recipe = tmp_path / "process.toml"
        recipe.write_text(
            f'plugins = ["{HERE / "ray_processor.py"}"]\n'
            + DIGITS.read_text(encoding="utf-8")
            + textwrap.dedent(
                """
                [[process]]
                name = "parse"
                inputs = ["in.txt"]
                executor = { name = "ray", connect_timeout_s = 5 }
                cache_dir = "cache"
                """
            ),
            encoding="utf-8",
        )
        args = [runner, "process", str(recipe)]
    env = {**os.environ, "RAY_ADDRESS": address}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60), address


@pytest.mark.slow
@pytest.mark.parametrize(
    ("component", "what"), [("backend", "[run] backend 'ray'"), ("executor", "[[process]] executor 'ray'")]
)
def test_unreachable_cluster_is_one_line_at_once(tmp_path: Path, component: str, what: str) -> None:
    pytest.importorskip("ray", reason="Ray is not installed")
    started = time.monotonic()
    ran, address = _unreachable_run(tmp_path, component)  # Ray alone retries for minutes: TimeoutExpired
    assert time.monotonic() - started < 30
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip() == (
        f"error: {what}: cannot connect to the Ray cluster at '{address}' ($RAY_ADDRESS): connection refused; "
        "check the address and that the cluster runs (ray status)"
    )
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_silent_address_is_given_up_after_connect_timeout_s(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from runner_ray.cluster import unreachable

    tried: list[tuple[Any, float]] = []

    def silent(address: Any, timeout: float) -> Any:
        tried.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    why = unreachable(None, "10.1.2.3:6379", 2.5)
    assert tried == [(("10.1.2.3", 6379), pytest.approx(2.5, abs=0.1))]
    assert why is not None and why.startswith("no answer within 2.5 s (connect_timeout_s; raise it")
    tried.clear()
    assert unreachable(None, "ray://head", 1) is not None and tried[0][0] == ("head", 10001)
    monkeypatch.setenv("RAY_ADDRESS", "[::1]:7000")
    tried.clear()
    assert unreachable(None, "auto", 1) is not None and tried[0][0] == ("::1", 7000)


def test_address_forms() -> None:
    from runner_ray.reach import is_loopback, split_address

    assert split_address("head:6379") == ("head", 6379)
    assert split_address("ray://head") == ("head", 10001)
    assert split_address("ray://10.0.0.1:10002") == ("10.0.0.1", 10002)
    assert split_address("[fe80::1]:6379") == ("fe80::1", 6379)
    assert split_address("auto") is None and split_address("head") is None and split_address("fe80::1") is None
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and not is_loopback("head")


def test_rays_own_connection_retries_are_bounded_while_joining(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner_ray.reach import bounded_ray_connect

    tries, wait = "RAY_gcs_server_port_wait_time_s", "RAY_py_gcs_connect_timeout_s"  # Ray's spelling
    monkeypatch.delenv(tries, raising=False)
    monkeypatch.setenv(wait, "99")  # the user's own setting wins
    with bounded_ray_connect(7):
        assert (os.environ.get(tries), os.environ.get(wait)) == ("1", "99")
    assert (os.environ.get(tries), os.environ.get(wait)) == (None, "99")
    monkeypatch.delenv(wait)
    with bounded_ray_connect(7):
        assert os.environ.get(wait) == "7"
    assert wait not in os.environ
