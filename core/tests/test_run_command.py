"""The run directory keeps the command that started the run (issue 14 item 5): command.json,
copies of the local plugin files, a recipe.toml that lists them; ``runner resume RUN_DIR``
and ``runner run --resume RUN_DIR`` continue from those alone; a start that fails before
it trains leaves no crashed run behind."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import HERMETIC_ENV

from runner._engine.command import portable_plugins
from runner.testing import CliResult, run_cli

Runner = Callable[..., CliResult]  # unpacks as (exit code, stdout, stderr)

CHECKPOINTER = """
from runner import hookimpl


class Nothing:
    '''A checkpointer that never saved: restore finds nothing.'''

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def restore(self, run, source):
        return False


@hookimpl
def register_checkpointers(register):
    register("nothing", Nothing)
"""

BROKEN_LOGGER = """
from runner import RunnerError, hookimpl


def broken(run_dir):
    raise RunnerError("broken: cannot reach the tracking server at http://nowhere (check the address)")


@hookimpl
def register_loggers(register):
    register("broken", broken)
"""

#: Options that give the toy recipe the ``nothing`` checkpointer (written by the fixture).
CHECKPOINTED = ("-p", "nothing.py", "-o", 'checkpoint={name = "nothing"}')


@pytest.fixture
def runner(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Runner:
    """``runner(*args)`` runs ``runner ARGS`` in-process in the toy directory:
    (exit status, stdout, stderr)."""
    monkeypatch.chdir(toy_dir)
    (toy_dir / "nothing.py").write_text(CHECKPOINTER, encoding="utf-8")
    (toy_dir / "broken.py").write_text(BROKEN_LOGGER, encoding="utf-8")
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)
    return run_cli


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_run_directory_keeps_the_command_and_copies_of_the_plugins(runner: Runner, toy_dir: Path) -> None:
    code, _, err = runner("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=2", "--run-dir", "ck", "--no-progress")
    assert code == 0, err
    run_dir = toy_dir / "ck"
    saved = json.loads((run_dir / "command.json").read_text(encoding="utf-8"))
    assert saved["resume"] == "runner resume ck"
    (start,) = saved["commands"]
    assert start["recipe"] == "toy.toml" and start["recipe_sha256"] == sha256(toy_dir / "toy.toml")
    assert start["overrides"] == ['checkpoint={name = "nothing"}', "run.max_steps=2"]
    assert start["cwd"] == str(toy_dir) and start["resume"] is False
    assert start["command"] == (
        "runner run toy.toml -o 'checkpoint={name = \"nothing\"}' -o run.max_steps=2 "
        f"-p nothing.py -p {toy_dir / 'toy_plugin.py'} --run-dir ck"
    )
    files = {row["file"]: row["sha256"] for row in start["plugins"]}
    assert files == {
        "plugins/nothing.py": sha256(toy_dir / "nothing.py"),
        "plugins/toy_plugin.py": sha256(toy_dir / "toy_plugin.py"),
    }
    for name in files:
        assert (run_dir / name).read_bytes() == (toy_dir / Path(name).name).read_bytes()
    recipe = (run_dir / "recipe.toml").read_text(encoding="utf-8")
    assert recipe.startswith('plugins = [\n    "plugins/nothing.py",\n    "plugins/toy_plugin.py",\n]\n')
    # The recipe as written is untouched: recipe show prints its own plugins list.
    code, out, _ = runner("recipe", "show", "toy.toml")
    assert code == 0 and out.startswith('plugins = [\n    "toy_plugin.py",\n]\n')


def test_runner_resume_continues_from_the_run_directory_alone(runner: Runner, toy_dir: Path) -> None:
    code, _, err = runner("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=3", "--run-dir", "ck", "--no-progress")
    assert code == 0, err
    (toy_dir / "toy.toml").unlink()  # neither the recipe nor the plugin files are needed any more
    (toy_dir / "toy_plugin.py").unlink()
    (toy_dir / "nothing.py").unlink()
    for command in (("resume", "ck"), ("run", "--resume", "ck"), ("run", "--run-dir", "ck", "--resume")):
        code, out, err = runner(*command, "--no-progress")
        assert code == 0, err
        assert err == "no checkpoint in ck yet: starting from the beginning\n", command  # the "nothing" checkpointer
        assert out.startswith("toy: 3 steps"), command  # max_steps=3 from the first command line
    saved = json.loads((toy_dir / "ck" / "command.json").read_text(encoding="utf-8"))
    assert [c["recipe"] for c in saved["commands"]] == ["toy.toml", *["ck/recipe.toml"] * 3]
    assert all(c["resume"] for c in saved["commands"][1:])


def test_resume_overrides_change_the_saved_recipe(runner: Runner, toy_dir: Path) -> None:
    runner("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=3", "--run-dir", "ck", "--no-progress")
    code, out, err = runner("resume", "ck", "-o", "run.max_steps=2", "--no-progress")
    assert code == 0, err
    assert out.startswith("toy: 2 steps")
    assert "max_steps = 2" in (toy_dir / "ck" / "recipe.toml").read_text(encoding="utf-8")


def test_an_edited_plugin_copy_is_warned_about(runner: Runner, toy_dir: Path) -> None:
    runner("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=1", "--run-dir", "ck", "--no-progress")
    copy = toy_dir / "ck" / "plugins" / "nothing.py"
    copy.write_text(copy.read_text(encoding="utf-8") + "\n# patched\n", encoding="utf-8")
    code, _, err = runner("resume", "ck", "--no-progress")
    assert code == 0, err
    assert err.splitlines()[0] == (
        f"warning: {copy.relative_to(toy_dir)} changed since the run started (its sha256 differs from command.json)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("resume", "nowhere"),
            "run directory nowhere does not exist; start the run with: runner run RECIPE --resume nowhere",
        ),
        (
            ("resume", "other"),
            "other holds no saved command (command.json): it is no run directory, or its run started before runner "
            "saved commands; continue it with: runner run RECIPE --run-dir other --resume",
        ),
        (("run", "--resume", "toy.toml"), "toy.toml is not a run directory"),
    ],
)
def test_nothing_to_resume_is_one_line(runner: Runner, toy_dir: Path, args: tuple[str, ...], message: str) -> None:
    (toy_dir / "other").mkdir()
    (toy_dir / "other" / "notes.txt").write_text("mine\n", encoding="utf-8")
    assert runner(*args) == (2, "", f"error: {message}\n")


def test_run_without_a_recipe_says_what_it_needs(runner: Runner) -> None:
    code, _, err = runner("run")
    assert code == 2
    assert "missing RECIPE (or --resume RUN_DIR, to continue a run from its directory)" in err


def test_a_run_without_a_checkpointer_cannot_be_resumed_but_reruns(runner: Runner, toy_dir: Path) -> None:
    runner("run", "toy.toml", "-o", "run.max_steps=1", "--no-progress")
    code, out, err = runner("resume", "runs/toy")
    assert (code, out) == (2, "")
    assert err == (
        "error: runs/toy cannot be resumed: its recipe has no [checkpoint] table; "
        "rerun it from the start with: runner run runs/toy/recipe.toml\n"
    )
    code, out, err = runner("run", "runs/toy/recipe.toml", "--no-progress")
    assert code == 0, err
    assert out.endswith(" -> runs/toy-1\n")


def test_the_saved_recipe_reruns_from_anywhere_without_the_plugin_files(
    runner: Runner, toy_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = runner("run", "toy.toml", "-o", "run.max_steps=2", "--no-progress")
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    shutil.move(toy_dir / "runs" / "toy", elsewhere)
    (toy_dir / "toy_plugin.py").unlink()
    sys.modules.pop("runner_local_toy_plugin", None)
    monkeypatch.chdir(tmp_path)
    code, _, err = runner("run", "elsewhere/recipe.toml", "--run-dir", "again", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "again" / "metrics.jsonl").read_bytes() == (elsewhere / "metrics.jsonl").read_bytes()


def test_a_start_that_fails_before_training_leaves_no_run_behind(runner: Runner, toy_dir: Path) -> None:
    """A logger that cannot start: one line, exit 2, and `runner runs` lists no crashed run."""
    broken = ("-p", "broken.py", "-o", 'loggers=[{name = "broken"}]', "--no-progress")
    code, out, err = runner("run", "toy.toml", *broken)
    assert (code, out) == (2, "")
    assert err == "error: broken: cannot reach the tracking server at http://nowhere (check the address)\n"
    assert not (toy_dir / "runs" / "toy").exists()
    (toy_dir / "empty").mkdir()  # a directory the user made is kept, and emptied again
    assert runner("run", "toy.toml", *broken, "--run-dir", "empty")[0] == 2
    assert (toy_dir / "empty").is_dir() and not list((toy_dir / "empty").iterdir())
    code, out, _ = runner("runs")
    assert "crashed" not in out


def test_a_failed_start_in_a_run_directory_keeps_its_run(runner: Runner, toy_dir: Path) -> None:
    runner("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=2", "--run-dir", "ck", "--no-progress")

    def files() -> dict[str, bytes]:
        run_dir = toy_dir / "ck"
        return {
            str(p.relative_to(run_dir)): p.read_bytes()
            for p in run_dir.rglob("*")
            if p.is_file() and p.name != ".runner-run"
        }

    before = files()
    code, _, _ = runner("resume", "ck", "-p", "broken.py", "-o", 'loggers=[{name = "broken"}]', "--no-progress")
    assert code == 2
    assert files() == before  # recipe.toml, command.json, plugins/, metrics, heartbeat and summary as they were
    code, out, _ = runner("runs", ".")
    assert "ck" in out and "finished" in out and "crashed" not in out


def test_plugin_files_keep_their_names_in_the_run_directory(tmp_path: Path) -> None:
    """A local plugin is named after its file (and its checkpointed state by that name)."""
    specs = [str(tmp_path / "a" / "p.py"), "pkg.module", str(tmp_path / "b" / "p.py"), "no:tensorboard"]
    assert [p.saved for p in portable_plugins(specs)] == [
        "plugins/p.py",
        "pkg.module",
        "plugins/2/p.py",
        "no:tensorboard",
    ]


def test_resume_path_names_a_run_directory_unless_it_is_inside_one(runner: Runner, toy_dir: Path) -> None:
    """``--resume DIR`` (no --run-dir) is the run directory when new, empty or a run; a
    path that does not exist inside a run directory is still a (mistyped) checkpoint."""
    args = ("run", "toy.toml", *CHECKPOINTED, "-o", "run.max_steps=1", "--no-progress")
    code, out, err = runner(*args, "--resume", "jobs/first")
    assert code == 0, err
    assert out.endswith(" -> jobs/first\n") and err == "no checkpoint in jobs/first yet: starting from the beginning\n"
    code, out, err = runner(*args, "--resume", "jobs/first/checkpoints/step-000009")
    assert (code, err) == (2, "error: no valid checkpoint to resume from in jobs/first/checkpoints/step-000009\n")
    assert not (toy_dir / "jobs" / "first" / "checkpoints").exists()
    assert not (toy_dir / "runs").exists() or not list((toy_dir / "runs").iterdir())  # the failed start's dir
