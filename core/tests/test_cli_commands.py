"""The ``runner`` command line (runner._cli).

User errors exit with status 2 and print one ``error:`` line per problem (file:line and
key path first), never a traceback unless ``--debug`` asks for one. Commands that only
validate run in a subprocess, hermetically (see ``HERMETIC_ENV``); training runs go
through ``main()`` in-process, where torch is already imported.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from core_helpers import HERMETIC_ENV, TOY, FakeDist

from runner import __version__
from runner._cli.main import main

Cli = Callable[..., subprocess.CompletedProcess[str]]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def assert_user_error(result: subprocess.CompletedProcess[str], problems: list[str]) -> None:
    """Exit 2, exactly these problem lines plus the count, nothing else on stderr."""
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    noun = "problem" if len(problems) == 1 else "problems"
    expected = [f"error: {p}" for p in problems] + [f"error: recipe invalid: {len(problems)} {noun}"]
    assert result.stderr.splitlines() == expected, result.stderr


# -- every class of bad recipe ---------------------------------------------------------


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("[run]", "[run", "toy.toml:4:5: TOML syntax error: Expected ']' at the end of a table declaration"),
        ("epochs = 2", "epochs = 2\nepoch = 3", "toy.toml:7:1: run.epoch: unknown key (did you mean 'epochs'?)"),
        ("log_every = 2", 'log_every = "2"', "toy.toml:7:1: run.log_every: expected int, found str '2'"),
        ('name = "lin"', 'name = "lni"', "toy.toml:18:1: model.name: unknown model 'lni' (did you mean 'lin'?)"),
        (
            "lr = 0.5",
            'lr = 0.5\n\n[[callbacks]]\nname = "stop_after"',
            "toy.toml:27:1: callbacks[0].steps: missing required key (expected int)",
        ),
    ],
    ids=["syntax", "unknown-key", "wrong-type", "unknown-component", "missing-parameter"],
)
def test_bad_recipes_exit_2_with_one_located_line_per_problem(
    cli: Cli, toy_dir: Path, old: str, new: str, problem: str
) -> None:
    (toy_dir / "toy.toml").write_text(TOY.replace(old, new, 1), encoding="utf-8")
    assert_user_error(cli("recipe", "check", "toy.toml"), [problem])


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("command", [("run",), ("recipe", "show")])
def test_every_command_taking_a_recipe_reports_the_same_problems(
    cli: Cli, toy_dir: Path, command: tuple[str, ...]
) -> None:
    (toy_dir / "toy.toml").write_text(
        TOY.replace("[run]", "[run]\nepoch = 1").replace('"lin"', '"lni"'), encoding="utf-8"
    )
    checked = cli("recipe", "check", "toy.toml")
    assert len(error_lines(checked)) == 3
    result = cli(*command, "toy.toml")
    assert (result.returncode, result.stderr, result.stdout) == (2, checked.stderr, "")


@pytest.mark.slow  # starts processes
def test_bad_override_is_located_on_the_command_line(cli: Cli, toy_dir: Path) -> None:
    result = cli("recipe", "check", "toy.toml", "-o", "run..epochs=3", "-o", "model.hidden=[1,")
    assert_user_error(
        result,
        [
            "<command line> -o run..epochs=3: bad override: empty key in 'run..epochs'",
            "<command line> -o model.hidden=[1,: bad override: cannot parse value '[1,' as TOML "
            "(quote strings: key='text')",
        ],
    )


@pytest.mark.slow  # starts processes
def test_a_bad_override_does_not_hide_the_files_problems(cli: Cli, toy_dir: Path) -> None:
    """Every problem at once: an override that cannot be applied is reported next to the
    recipe's own problems and the other overrides', not instead of them."""
    (toy_dir / "toy.toml").write_text(TOY.replace('"lin"', '"lni"'), encoding="utf-8")
    result = cli("recipe", "check", "toy.toml", "-o", "run..epochs=3", "-o", "run.epochs=0")
    assert result.returncode == 2, result
    lines = error_lines(result)
    assert any("toy.toml" in line and "model.name: unknown model 'lni'" in line for line in lines), lines
    assert "error: <command line> -o run..epochs=3: bad override: empty key in 'run..epochs'" in lines, lines
    assert "error: <command line> -o run.epochs=0: run.epochs: must be at least 1, found 0" in lines, lines
    assert lines[-1] == "error: recipe invalid: 3 problems", lines


@pytest.mark.slow  # starts processes
def test_override_values_are_validated_like_the_file(cli: Cli, toy_dir: Path) -> None:
    result = cli("run", "toy.toml", "-o", "run.epochs=0", "-o", "model.name=mlp")
    assert_user_error(
        result,
        [
            "<command line> -o model.name=mlp: model.name: unknown model 'mlp'; registered models: lin; "
            "it is provided by runner-models: pip install runner-models",
            "<command line> -o run.epochs=0: run.epochs: must be at least 1, found 0",
        ],
    )


@pytest.mark.slow  # starts processes
def test_many_problems_are_reported_together(cli: Cli, toy_dir: Path) -> None:
    bad = TOY.replace("epochs = 2", "epoch = 2").replace('"lin"', '"lni"').replace("lr = 0.5", 'lr = "fast"')
    (toy_dir / "toy.toml").write_text(bad, encoding="utf-8")
    lines = error_lines(cli("recipe", "check", "toy.toml"))
    assert lines == [
        "error: toy.toml:4:1: run: set run.epochs or run.max_steps (expected int)",
        "error: toy.toml:6:1: run.epoch: unknown key (did you mean 'epochs'?)",
        "error: toy.toml:18:1: model.name: unknown model 'lni' (did you mean 'lin'?)",
        "error: toy.toml:25:1: optimizer.lr: expected float, found str 'fast'",
        "error: recipe invalid: 4 problems",
    ]


@pytest.mark.slow  # starts processes
def test_check_reports_every_file(cli: Cli, toy_dir: Path) -> None:
    (toy_dir / "bad.toml").write_text(TOY.replace("log_every = 2", "log_every = 0"), encoding="utf-8")
    result = cli("recipe", "check", "toy.toml", "bad.toml", "missing.toml")
    assert result.returncode == 2
    assert result.stdout == (  # the toy recipe lists toy_plugin.py: it is code, and says so
        "toy.toml: this recipe runs code from: toy_plugin.py\ntoy.toml: ok\n"
        "bad.toml: this recipe runs code from: toy_plugin.py\n"
    )
    assert error_lines(result) == [
        "error: bad.toml:7:1: run.log_every: must be at least 1, found 0",
        "error: recipe file missing.toml not found",
        "error: recipe invalid: 2 problems",
    ]


@pytest.mark.slow  # starts processes
def test_debug_shows_the_traceback(cli: Cli, toy_dir: Path) -> None:
    result = cli("--debug", "recipe", "check", "toy.toml", "-o", "run.epochs=x")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-2:] == [
        "error: <command line> -o run.epochs=x: run.epochs: expected int, found str 'x'",
        "error: recipe invalid: 1 problem",
    ]


@pytest.mark.slow  # starts processes
def test_usage_errors_exit_2(cli: Cli) -> None:
    result = cli("recipe", "check")
    assert result.returncode == 2 and "Missing argument" in result.stderr
    assert cli("no-such-command").returncode == 2


# -- information commands --------------------------------------------------------------


@pytest.mark.slow  # starts processes
def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert (result.returncode, result.stdout) == (0, f"runner {__version__}\n")


@pytest.mark.slow  # starts processes
def test_help_lists_the_registered_commands(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    section = result.stdout.split("Commands:\n")[1].splitlines()
    listed = [line.split()[0] for line in section if line.strip()]
    assert listed == sorted(listed) and {"plugins", "recipe", "run"} <= set(listed)
    assert "Train a recipe." in result.stdout


@pytest.mark.slow  # starts processes
def test_recipe_check_ok(cli: Cli, toy_dir: Path) -> None:
    result = cli("recipe", "check", "toy.toml")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        "toy.toml: this recipe runs code from: toy_plugin.py\ntoy.toml: ok\n",
        "",
    )


@pytest.mark.slow  # starts processes
def test_recipe_plugins_load_relative_to_the_recipe_file(cli: Cli, toy_dir: Path) -> None:
    elsewhere = toy_dir / "elsewhere"
    elsewhere.mkdir()
    result = cli("recipe", "check", str(toy_dir / "toy.toml"), cwd=elsewhere)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow  # starts processes
def test_recipe_show_round_trips(cli: Cli, toy_dir: Path) -> None:
    shown = cli("recipe", "show", "toy.toml", "-o", "run.seed=3")
    assert shown.returncode == 0, shown.stderr
    assert "seed = 3" in shown.stdout and "batch_size = 8" in shown.stdout and "num_workers = 0" in shown.stdout
    (toy_dir / "shown.toml").write_text(shown.stdout, encoding="utf-8")
    again = cli("recipe", "show", "shown.toml")
    assert again.returncode == 0 and again.stdout == shown.stdout


@pytest.fixture
def broken_dist(fake_dists: Callable[..., FakeDist]) -> dict[str, str]:
    """A broken installed plugin, visible to subprocesses through PYTHONPATH."""
    dist = fake_dists("runner-broken", "raise ImportError('No module named torchvision')", version="0.3")
    pythonpath = os.pathsep.join(filter(None, [str(dist.site), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": pythonpath, "RUNNER_PLUGINS": "runner-broken"}


@pytest.mark.slow  # starts processes
def test_plugins_json(cli: Cli, toy_dir: Path, broken_dist: dict[str, str]) -> None:
    result = cli("-p", "toy_plugin.py", "plugins", "--json", env=broken_dist)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"plugins", "failures", "warnings"}
    assert report["warnings"] == []
    core, toy = report["plugins"]
    assert set(core) == {"name", "distribution", "version", "hooks", "components", "commands"}
    assert (core["name"], core["distribution"], core["version"]) == ("runner", "runner-core", __version__)
    assert {"register_backends", "register_commands", "register_samplers"} <= set(core["hooks"])
    assert "single" in core["components"]["backend"]
    assert {"random", "sequential"} <= set(core["components"]["sampler"])
    assert {"plugins", "recipe", "run"} <= set(core["commands"])
    assert toy["name"] == "toy_plugin" and toy["version"] == "local" and toy["distribution"] == "toy_plugin.py"
    assert toy["components"] == {
        "callback": ["probe", "sleep", "stop_after"],
        "dataset": ["toy", "toy_rows"],
        "model": ["lin"],
        "optimizer": ["sgd"],
        "task": ["cls"],
    }
    assert toy["commands"] == []
    assert report["failures"] == [
        {
            "name": "runner-broken",
            "distribution": "runner-broken",
            "version": "0.3",
            "error": "ImportError: No module named torchvision",
        }
    ]


@pytest.mark.slow  # starts processes
def test_plugins_lists_components_and_reports_failures_on_stderr(
    cli: Cli, toy_dir: Path, broken_dist: dict[str, str]
) -> None:
    result = cli("-p", "toy_plugin.py", "plugins", env=broken_dist)
    assert result.returncode == 0
    assert "runner-core 0.1.0 (runner)\n  backends: single\n" in result.stdout
    assert "\n  samplers: random, sequential\n" in result.stdout
    assert (
        "toy_plugin.py local (toy_plugin)\n  callbacks: probe, sleep, stop_after\n  datasets: toy, toy_rows\n"
        in result.stdout
    )
    assert result.stderr == "plugin runner-broken 0.3 failed to load: ImportError: No module named torchvision\n"


@pytest.mark.slow  # starts processes
def test_no_prefix_disables_an_installed_plugin(cli: Cli, broken_dist: dict[str, str]) -> None:
    result = cli("-p", "no:runner-broken", "plugins", "--json", env=broken_dist)
    assert result.returncode == 0 and json.loads(result.stdout)["failures"] == []


@pytest.mark.slow  # starts processes
def test_unknown_component_notes_the_failed_plugin(cli: Cli, toy_dir: Path, broken_dist: dict[str, str]) -> None:
    (toy_dir / "toy.toml").write_text(TOY.replace('"lin"', '"resnet"'), encoding="utf-8")
    assert_user_error(
        cli("recipe", "check", "toy.toml", env=broken_dist),
        [
            "toy.toml:18:1: model.name: unknown model 'resnet'; registered models: lin; "
            "it is provided by runner-vision: pip install runner-vision; "
            "note: plugin runner-broken 0.3 failed to load: ImportError: No module named torchvision"
        ],
    )


# -- runs ------------------------------------------------------------------------------


@pytest.fixture
def in_toy_dir(toy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(toy_dir)
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)
    return toy_dir


def test_run_writes_metrics_recipe_and_summary(in_toy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["run", "toy.toml", "--no-progress", "-o", "run.epochs=1"])
    out = capsys.readouterr().out
    assert out.startswith("toy: 8 steps, 1 epochs in ") and out.endswith(" -> runs/toy\n")
    assert "; val/main loss " in out
    run_dir = in_toy_dir / "runs" / "toy"
    written = sorted(p.name for p in run_dir.iterdir())
    assert written == [
        ".runner-run",
        "command.json",
        "heartbeat.json",
        "metrics.jsonl",
        "model.json",
        "model.safetensors",
        "plugins",
        "recipe.toml",
        "summary.json",
    ]
    assert (run_dir / "plugins" / "toy_plugin.py").read_bytes() == (in_toy_dir / "toy_plugin.py").read_bytes()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["stage"], r["step"]) for r in records] == [
        ("train", 2),
        ("train", 4),
        ("train", 6),
        ("train", 8),
        ("val", 8),
    ]
    assert records[-1]["key"] == "main" and {"epoch", "loss", "accuracy"} <= set(records[-1])
    assert {"epoch", "loss", "accuracy", "lr"} <= set(records[0])
    assert json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))["global_step"] == 8
    assert "epochs = 1" in (run_dir / "recipe.toml").read_text(encoding="utf-8")


def test_default_run_dirs_are_never_reused(in_toy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        main(["run", "toy.toml", "--no-progress", "-o", "run.max_steps=1", "-o", "run.name=again"])
    assert capsys.readouterr().out.splitlines()[-1].endswith(" -> runs/again-1")
    assert sorted(p.name for p in (in_toy_dir / "runs").iterdir()) == ["again", "again-1"]


@pytest.mark.slow  # starts processes
def test_an_explicit_run_dir_holding_a_run_is_refused(cli: Cli, toy_dir: Path) -> None:
    (toy_dir / "done").mkdir()
    (toy_dir / "done" / ".runner-run").touch()
    (toy_dir / "done" / "metrics.jsonl").write_text("{}\n", encoding="utf-8")
    result = cli("run", "toy.toml", "--run-dir", "done")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        "error: run directory done already holds a run; pass --resume to continue it or choose another --run-dir\n"
    )
    assert (toy_dir / "done" / "metrics.jsonl").read_text(encoding="utf-8") == "{}\n"
