"""Built-in loggers (jsonl, csv), BufferedLogger, run status, ``runner runs`` and ``runner plot``."""

from __future__ import annotations

import csv
import json
import os
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import HERMETIC_ENV, TOY, TOY_PLUGIN, check_recipe, write

from runner._builtin.loggers import CsvLogger, JsonlLogger
from runner._cli.tools.runs import read_run, status_of
from runner._contract.errors import PluginError, RunnerError
from runner._contract.registration import PluginInfo
from runner._engine.buffered import BufferedLogger, flatten, metric_items
from runner._engine.records import Records
from runner._engine.run import execute
from runner._engine.rundir import HEARTBEAT_FILE, HEARTBEAT_SECS
from runner._plugins.manager import PluginManager
from runner.testing import CliResult, run_cli_subprocess

CRASH = """
from runner import hookimpl


class Crash:
    def on_end_train_step(self, run, global_step):
        if global_step == 4:
            raise ZeroDivisionError("threshold / 0")


@hookimpl
def register_callbacks(register):
    register("crash", Crash)
"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def crash_manager(write_plugin: Callable[[str, str], str]) -> PluginManager:
    path = write_plugin("crash", CRASH)
    return PluginManager(local_plugins=[str(TOY_PLUGIN), path], use_entry_points=False).load()


@pytest.fixture
def runs_dir(tmp_path: Path, crash_manager: PluginManager) -> Path:
    """runs/fast (lr 0.5), runs/slow (lr 0.05), both finished, and runs/broken (crashed at step 4)."""
    root = tmp_path / "runs"
    for name, lr in (("fast", 0.5), ("slow", 0.05)):
        recipe = check_recipe(TOY, crash_manager, tmp_path, (f"optimizer.lr={lr}",), name=f"{name}.toml")
        execute(recipe, crash_manager, root / name, show_progress=False)
    crashing = check_recipe(TOY + '\n[[callbacks]]\nname = "crash"\n', crash_manager, tmp_path, name="broken.toml")
    with pytest.raises(PluginError):
        execute(crashing, crash_manager, root / "broken", show_progress=False)
    return root


def runner_cli(*args: str, cwd: Path, columns: int = 200) -> CliResult:
    return run_cli_subprocess(*args, cwd=cwd, env={**HERMETIC_ENV, "COLUMNS": str(columns)}, timeout=120)


# -- helpers of runner._engine.buffered ---------------------------------------------------------------


def test_metric_items_and_flatten() -> None:
    train = {"stage": "train", "epoch": 0, "step": 4, "loss": 0.5, "lr": None, "ok": True}
    val = {"stage": "val", "key": "main", "epoch": 0, "step": 4, "accuracy": 1}
    assert list(metric_items(train)) == [("train/loss", 0.5)]
    assert list(metric_items(val)) == [("val/main/accuracy", 1.0)]
    tree = {"run": {"seed": 0, "name": "x"}, "model": {"hidden": [8, 8]}, "loggers": [{"name": "csv"}], "x": None}
    assert flatten(tree) == {
        "run.seed": 0,
        "run.name": "x",
        "model.hidden": "[8, 8]",
        "loggers": '[{"name": "csv"}]',
        "x": "none",
    }


# -- jsonl and csv ---------------------------------------------------------------------------------


def test_jsonl_and_csv_loggers_in_a_run(tmp_path: Path, crash_manager: PluginManager) -> None:
    loggers = (
        '\n[[loggers]]\nname = "jsonl"\n'
        '\n[[loggers]]\nname = "jsonl"\npath = "val.jsonl"\nstages = ["val"]\ntimestamps = false\n'
        '\n[[loggers]]\nname = "csv"\n'
    )
    recipe = check_recipe(TOY + loggers, crash_manager, tmp_path)
    run_dir = tmp_path / "run"
    execute(recipe, crash_manager, run_dir, show_progress=False)
    canonical = records_of(run_dir / "metrics.jsonl")
    assert {r["stage"] for r in canonical} == {"train", "val"}

    timed = records_of(run_dir / "log.jsonl")
    assert [{k: v for k, v in r.items() if k not in ("time", "elapsed")} for r in timed] == canonical
    assert all(r["time"] > 1e9 and r["elapsed"] >= 0 for r in timed)
    assert records_of(run_dir / "val.jsonl") == [r for r in canonical if r["stage"] == "val"]

    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
        header = list(rows[0])
    assert header[:4] == ["stage", "key", "epoch", "step"]  # widened when the first val record came
    assert set(header) == {k for r in canonical for k in r}
    assert len(rows) == len(canonical)
    for row, record in zip(rows, canonical, strict=True):
        for key in header:
            expected = record.get(key)
            assert row[key] == ("" if expected is None else str(expected)), (key, row, record)


def test_csv_widens_rewrites_and_appends_after_a_resume(tmp_path: Path) -> None:
    logger = CsvLogger(tmp_path, flush_secs=0)
    logger.log({"stage": "train", "epoch": 0, "step": 1, "loss": 1.0})
    logger.log({"stage": "val", "key": "main", "epoch": 0, "step": 1, "loss": 0.5, "acc": 0.9})
    logger.close()
    again = CsvLogger(tmp_path)  # a resumed run appends under the existing header
    again.log({"stage": "train", "epoch": 1, "step": 2, "loss": 0.25, "acc": 1.0})
    again.log({"stage": "test", "key": "main", "epoch": 1, "step": 2, "f1": 0.7})
    again.close()
    lines = (tmp_path / "metrics.csv").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "stage,key,epoch,step,loss,acc,f1",
        "train,,0,1,1.0,,",
        "val,main,0,1,0.5,0.9,",
        "train,,1,2,0.25,1.0,",
        "test,main,1,2,,,0.7",
    ]


def test_csv_fixed_columns(tmp_path: Path) -> None:
    logger = CsvLogger(tmp_path, path="sub/few.csv", columns=["step", "loss"])
    logger.log({"stage": "train", "step": 1, "loss": 1.0, "lr": 0.1})
    logger.close()
    assert (tmp_path / "sub" / "few.csv").read_text(encoding="utf-8").splitlines() == ["step,loss", "1,1.0"]


def test_file_loggers_refuse_the_engines_metrics_file(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"metrics\.jsonl"):
        JsonlLogger(tmp_path, path="metrics.jsonl")


def test_logger_parameters_are_validated(tmp_path: Path, crash_manager: PluginManager) -> None:
    from runner._contract.errors import RecipeError

    with pytest.raises(RecipeError) as caught:
        check_recipe(TOY + '\n[[loggers]]\nname = "csv"\nstages = ["trian"]\n', crash_manager, tmp_path)
    assert "unknown stages ['trian']" in str(caught.value.problems[0])


# -- BufferedLogger ------------------------------------------------------------------------------


class SlowSink(BufferedLogger):
    def __init__(self, fail: bool = False, fail_finish: bool = False) -> None:
        super().__init__()
        self.batches: list[list[dict[str, Any]]] = []
        self.fail, self.fail_finish = fail, fail_finish
        self.finished: list[BaseException | None] = []

    def write(self, records: list[dict[str, Any]]) -> None:
        time.sleep(0.05)  # a remote tracking server
        if self.fail:
            raise ConnectionError("server went away")
        self.batches.append(records)

    def finish(self, error: BaseException | None) -> None:
        self.finished.append(error)
        if self.fail_finish:
            raise OSError("disk full")


def test_buffered_logger_never_makes_a_step_wait_and_writes_everything_in_batches() -> None:
    sink = SlowSink()
    started = time.perf_counter()
    for step in range(200):
        sink.log({"stage": "train", "step": step, "loss": 1.0})
    queued = time.perf_counter() - started
    assert queued < 0.05, f"log() blocked: {queued:.3f}s for 200 records"  # 200 writes would take 10s
    sink.close()
    assert [r["step"] for batch in sink.batches for r in batch] == list(range(200))
    assert len(sink.batches) < 20
    assert sink.finished == [None]


def test_buffered_logger_errors_reach_records_which_warns_once_naming_the_plugin() -> None:
    info = PluginInfo(name="tracker", dist="runner-tracker", version="9.9")
    sink = SlowSink(fail=True)
    records = Records(None, [(sink, info)])
    records.log({"stage": "train", "step": 1, "loss": 1.0})
    deadline = time.monotonic() + 10
    with pytest.warns(RuntimeWarning) as warned:
        while time.monotonic() < deadline and not warned.list:
            records.log({"stage": "train", "step": 2, "loss": 1.0})
            time.sleep(0.01)
        records.log({"stage": "train", "step": 3, "loss": 1.0})  # disabled: no second warning
        records.close()
    [warning] = warned
    assert str(warning.message) == (
        "logger from plugin runner-tracker 9.9 failed and is disabled: ConnectionError: server went away"
    )


def test_a_logger_failing_when_closing_is_warned_about() -> None:
    info = PluginInfo(name="tracker", dist="runner-tracker", version="9.9")
    records = Records(None, [(SlowSink(fail_finish=True), info)])
    records.log({"stage": "train", "step": 1, "loss": 1.0})
    with pytest.warns(RuntimeWarning, match=r"runner-tracker 9\.9 failed when closing: OSError: disk full"):
        records.close()


def test_finish_sees_the_exception_ending_the_run() -> None:
    sink = SlowSink()
    sink.log({"stage": "train", "step": 1})
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        sink.close()
    assert isinstance(sink.finished[0], KeyboardInterrupt)


# -- run status --------------------------------------------------------------------------------


@pytest.mark.slow  # takes seconds
def test_status_of_finished_crashed_and_running_runs(runs_dir: Path, tmp_path: Path) -> None:
    assert status_of(runs_dir / "fast") == ("finished", "")
    assert status_of(runs_dir / "broken")[0] == "crashed"
    assert "ZeroDivisionError: threshold / 0" in status_of(runs_dir / "broken")[1]

    live = tmp_path / "live"
    write(live / "metrics.jsonl", '{"stage": "train", "epoch": 0, "step": 7, "loss": 0.5}\n')
    beat = {"pid": os.getpid(), "host": __import__("socket").gethostname(), "started": time.time() - 5}
    write(live / HEARTBEAT_FILE, json.dumps(beat))
    assert status_of(live) == ("running", "")
    info = read_run(live)
    assert info.steps == 7 and info.seconds is not None and info.seconds >= 5

    stale = time.time() - 4 * HEARTBEAT_SECS
    os.utime(live / HEARTBEAT_FILE, (stale, stale))  # SIGKILL or a lost machine: no more beats
    assert status_of(live)[0] == "crashed"

    write(live / HEARTBEAT_FILE, json.dumps({**beat, "pid": 2**22 + 12345}))  # fresh, but the process is gone
    assert status_of(live) == ("crashed", f"killed? process {2**22 + 12345} is gone")


def test_best_metric_of_a_run(runs_dir: Path) -> None:
    records = records_of(runs_dir / "fast" / "metrics.jsonl")
    val = [r for r in records if r["stage"] == "val"]
    info = read_run(runs_dir / "fast")
    assert info.status == "finished" and info.steps == max(r["step"] for r in records)
    metric = next(k for k in val[0] if k not in ("stage", "key", "epoch", "step") and "loss" not in k)
    assert info.best is not None and info.best.metric == f"main/{metric}"
    assert info.best.value == max(r[metric] for r in val)
    lowest = read_run(runs_dir / "fast", metric="loss").best
    assert lowest is not None and lowest.value == min(r["loss"] for r in val)


# -- the commands ----------------------------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_runs_lists_finished_and_crashed_runs(runs_dir: Path) -> None:
    result = runner_cli("runs", cwd=runs_dir.parent)  # default directory: runs/
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: re.split(r"  +", line) for line in result.stdout.splitlines()[3:]}
    assert set(rows) == {"fast", "slow", "broken"}, result.stdout
    assert rows["fast"][1] == "finished" and rows["slow"][1] == "finished"
    assert rows["broken"][1] == "crashed" and rows["broken"][-1].startswith("PluginError: plugin")
    assert rows["broken"][2] == "4"  # steps logged before the crash (log_every = 2)

    single = runner_cli("runs", str(runs_dir / "fast"), cwd=runs_dir.parent)
    assert single.returncode == 0 and "fast" in single.stdout and "broken" not in single.stdout
    missing = runner_cli("runs", "nowhere", cwd=runs_dir.parent)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no runs directory nowhere"


@pytest.mark.slow  # starts processes
def test_runs_fits_80_columns_truncating_the_note_and_keeping_every_column(runs_dir: Path) -> None:
    long_name = runs_dir / "a-run-with-a-rather-long-name-indeed"
    write(long_name / "metrics.jsonl", '{"stage": "val", "key": "main", "epoch": 0, "step": 3, "loss": 0.5}\n')
    beat = {"pid": 1, "host": "elsewhere", "started": time.time() - 50, "ended": time.time()}
    write(long_name / HEARTBEAT_FILE, json.dumps({**beat, "error": "RuntimeError: " + "the note goes on " * 20}))
    result = runner_cli("runs", cwd=runs_dir.parent, columns=80)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    assert lines[1].split() == ["run", "status", "steps", "best", "wall", "started", "note"]
    [crashed] = [re.split(r"  +", line) for line in lines if line.startswith("a-run-with")]
    assert len(crashed) == 7, crashed  # every column, the long note cut short
    assert crashed[0].endswith("…") and crashed[1] == "crashed" and crashed[2] == "3"
    assert crashed[3] == "loss 0.5 @ 3" and crashed[-1].startswith("Runtime") and crashed[-1].endswith("…")
    wide = runner_cli("runs", cwd=runs_dir.parent, columns=300).stdout
    assert "RuntimeError: the note goes on the note goes on" in wide and "a-run-with-a-rather-long-name-indeed" in wide


@pytest.mark.slow  # starts processes
def test_runs_compare_shows_the_recipe_diff_next_to_the_metrics(runs_dir: Path) -> None:
    result = runner_cli("runs", "compare", "runs/fast", "runs/slow", cwd=runs_dir.parent)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]] for line in lines}
    assert cells["optimizer.lr"] == ["0.5", "0.05"]
    assert "run.seed" not in cells  # identical keys are left out
    assert cells["status"] == ["finished", "finished"]
    final = records_of(runs_dir / "fast" / "metrics.jsonl")[-1]
    assert final["stage"] == "val"
    assert float(cells["val/main/loss"][0]) == pytest.approx(final["loss"], rel=1e-5)
    everything = runner_cli("runs", "compare", "runs/fast", "runs/broken", "--all", cwd=runs_dir.parent)
    assert "run.seed" in everything.stdout and "crashed" in everything.stdout


@pytest.mark.slow  # starts processes
def test_plot_writes_a_png_for_one_and_for_two_runs(runs_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    one = runner_cli("plot", "runs/fast", "-o", "one.png", cwd=runs_dir.parent)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("wrote one.png (loss")
    width, height = png_size(runs_dir.parent / "one.png")
    assert width >= 500 and height >= 300

    two = runner_cli("plot", "runs/fast", "runs/slow", "--metric", "loss", "-o", "out/two.png", cwd=runs_dir.parent)
    assert two.returncode == 0, two.stderr
    assert two.stdout.strip() == "wrote out/two.png (loss; 2 runs)"
    two_size = png_size(runs_dir.parent / "out" / "two.png")
    assert two_size[0] >= 500 and (runs_dir.parent / "out" / "two.png").stat().st_size > 10_000


@pytest.mark.slow  # takes seconds
def test_plot_draws_every_run_and_curve(runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from runner._cli.tools.plot import plot_runs

    saved: list[Figure] = []
    original = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        saved.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    drawn = plot_runs([runs_dir / "fast", runs_dir / "slow"], [], tmp_path / "curves.png")
    assert drawn[0] == "loss" and "lr" not in drawn
    [figure] = saved
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == drawn
    labels = [line.get_label() for line in visible[0].get_lines()]
    assert labels == ["fast train", "fast val", "slow train", "slow val"]


@pytest.mark.slow  # starts processes
def test_plot_unknown_metric_and_not_a_run(runs_dir: Path) -> None:
    pytest.importorskip("matplotlib")
    result = runner_cli("plot", "runs/fast", "-m", "los", cwd=runs_dir.parent)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no metric 'los' in these runs; did you mean 'loss'?")
    empty = runs_dir.parent / "empty"
    empty.mkdir()
    result = runner_cli("plot", "empty", cwd=runs_dir.parent)
    assert result.returncode == 2 and "empty: no metrics.jsonl records" in result.stderr


PROBE = """
import sys
import runner._cli.main

code = 0
try:
    runner._cli.main.main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
heavy = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "matplotlib", "tensorboard", "mlflow"})
print("heavy:", heavy, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["runs", "--help"], ["plot", "--help"], ["runs"]])
def test_commands_that_do_not_plot_import_neither_torch_nor_matplotlib(runs_dir: Path, args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=runs_dir.parent,
        env={**os.environ, **HERMETIC_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "heavy: []", result.stderr
