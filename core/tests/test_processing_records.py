"""Processing as broad as PyMarlin's: any list input (URLs and items untouched), records of
any shape through Arrow/Parquet shards, cache write errors that name the cache and the
field, processing-only recipes, and the multi-node shared-cache check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from core_helpers import write

from runner._contract.errors import DataError, RecipeError
from runner._contract.recipe import ProcessingRecipe, Recipe
from runner._plugins.manager import PluginManager
from runner._processing import DistArgs, load_output, run_steps
from runner._processing.nodes import marker_path
from runner._recipe.source import read_recipe
from runner._recipe.validate import validate
from runner._schema.export import recipe_schema

pa = pytest.importorskip("pyarrow")

PLUGIN = '''
"""Processors that show what they were given and return records of any shape."""
import json
import os

import attrs

from runner import hookimpl, param


@attrs.define
class EchoParams:
    log: str = param("")
    shape: str = param("records")


class Echo:
    """Records one line per call with the inputs it got; returns rows built from them."""

    def __init__(self, log="", shape="records"):
        self.log, self.shape = log, shape

    def process(self, inputs):
        if self.log:
            with open(self.log, "a") as handle:
                handle.write(json.dumps(inputs) + "\\n")
        rows = [
            {"text": json.dumps(item, sort_keys=True), "ids": list(range(i % 3 + 1)), "meta": {"n": i, "tag": "t"}}
            for i, item in enumerate(inputs)
        ]
        if self.shape == "columns":
            return {key: [row[key] for row in rows] for key in ("text", "ids", "meta")}
        return rows


@hookimpl
def register_processors(register):
    register("echo", Echo, params=EchoParams)
'''

STEP = """
plugins = ["{plugin}"]

[[process]]
name = "echo"
log = "{log}"
cache_dir = "{cache}"
{extra}
"""


@pytest.fixture
def manager(tmp_path: Path, toy_manager: PluginManager) -> PluginManager:
    toy_manager.load_local(str(write(tmp_path / "echo_plugin.py", PLUGIN)))
    return toy_manager


Make = Callable[..., ProcessingRecipe]


@pytest.fixture
def make(manager: PluginManager, tmp_path: Path) -> Make:
    def build(extra: str, cache: str = "c", name: str = "steps.toml", overrides: tuple[str, ...] = ()) -> Any:
        log, where = tmp_path / "calls.log", tmp_path / cache
        path = write(
            tmp_path / name, STEP.format(plugin=tmp_path / "echo_plugin.py", log=log, cache=where, extra=extra)
        )
        return validate(read_recipe(path, overrides), manager.registry, manager.failures, processing=True)

    return build


def calls(tmp_path: Path) -> list[Any]:
    log = tmp_path / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- any list input -------------------------------------------------------------------------


def test_urls_and_items_reach_the_processor_untouched(make: Make, manager: PluginManager, tmp_path: Path) -> None:
    """Before: inputs = ["https://example.com/a"] became the missing file 'https:/example.com/a'."""
    (tmp_path / "local.txt").write_text("x", encoding="utf-8")
    items = '[7, "user-17", { id = 3, text = "héllo" }]'
    steps = make(f'inputs = ["https://example.com/a", "local.txt"]\nitems = {items}\nshard_size = 5\nformat = "arrow"')
    assert steps.process[0].framework["inputs"] == ["https://example.com/a", str(tmp_path / "local.txt")]
    run_steps(steps, manager, report=None)
    assert calls(tmp_path) == [
        ["https://example.com/a", str(tmp_path / "local.txt"), 7, "user-17", {"id": 3, "text": "héllo"}]
    ]


def test_items_are_cached_by_value(make: Make, manager: PluginManager, tmp_path: Path) -> None:
    first = run_steps(make('items = ["a", "b", "c"]\nformat = "parquet"'), manager, report=None)[0]
    assert (first.processed, first.cached) == (3, 0)
    again = run_steps(make('items = ["a", "b", "c"]\nformat = "parquet"'), manager, report=None)[0]
    assert (again.processed, again.cached) == (0, 3)
    changed = run_steps(make('items = ["a", "B", "c"]\nformat = "parquet"'), manager, report=None)[0]
    assert (changed.processed, changed.cached) == (1, 2)
    assert calls(tmp_path)[-1] == ["B"]  # only the changed item's shard ran again


def test_an_item_and_a_file_with_the_same_text_have_different_keys(
    make: Make, manager: PluginManager, tmp_path: Path
) -> None:
    (tmp_path / "same").write_text("same", encoding="utf-8")
    run_steps(make('inputs = ["same"]\nformat = "arrow"'), manager, report=None)
    assert run_steps(make('items = ["same"]\nformat = "arrow"'), manager, report=None)[0].processed == 1


# -- records through Arrow / Parquet ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
@pytest.mark.parametrize("shape", ["records", "columns"])
def test_strings_ragged_and_nested_fields_round_trip(
    make: Make, manager: PluginManager, tmp_path: Path, fmt: str, shape: str
) -> None:
    steps = make(f'items = ["a", "b", "c", "d"]\nshard_size = 3\nformat = "{fmt}"\nshape = "{shape}"')
    run_steps(steps, manager, report=None)
    output = load_output("echo", tmp_path / "c")
    assert sorted(output) == ["ids", "meta", "text"]
    assert output["text"].to_pylist() == ['"a"', '"b"', '"c"', '"d"']
    assert output["ids"].to_pylist() == [[0], [0, 1], [0, 1, 2], [0]]  # ragged; input order kept
    assert output["meta"].to_pylist()[2] == {"n": 2, "tag": "t"}  # nested


@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_record_shards_are_byte_identical_whoever_writes_them(
    make: Make, manager: PluginManager, tmp_path: Path, fmt: str
) -> None:
    items = json.dumps([f"item{i}" for i in range(6)])
    run_steps(make(f'items = {items}\nformat = "{fmt}"', cache="one"), manager, report=None)
    run_steps(
        make(f'items = {items}\nformat = "{fmt}"\nprocess_count = 3', cache="three", name="b.toml"),
        manager,
        report=None,
    )
    one = sorted((tmp_path / "one" / "shards").iterdir())
    assert len(one) == 6 and all(p.suffix == f".{fmt}" for p in one)
    assert [p.read_bytes() for p in one] == [(tmp_path / "three" / "shards" / p.name).read_bytes() for p in one]


def test_numeric_arrays_keep_their_shape_in_record_shards(tmp_path: Path) -> None:
    import numpy as np
    import torch

    from runner._processing.records import read_table, to_table, write_table

    table = to_table({"image": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "y": torch.tensor([1, 2])}, "here")
    write_table(table, tmp_path / "t.arrow", "arrow")
    back = read_table(tmp_path / "t.arrow")
    assert back.column("image").to_pylist()[1][2] == [20.0, 21.0, 22.0, 23.0]
    assert back.column("y").to_pylist() == [1, 2]


# -- errors writing the cache ----------------------------------------------------------------


@pytest.mark.parametrize("count", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_field_a_tensor_format_cannot_hold_names_the_cache_and_the_field(
    make: Make, manager: PluginManager, tmp_path: Path, count: int
) -> None:
    """Whichever process wrote it (before: 'processor ... raised ValueError')."""
    steps = make(f'items = ["a", "b"]\nformat = "safetensors"\nshape = "columns"\nprocess_count = {count}')
    with pytest.raises(DataError) as caught:
        run_steps(steps, manager, report=None)
    message = str(caught.value)
    assert message.startswith(f"cache {tmp_path / 'c'}: shard ")
    assert "field 'text': not a numeric array" in message and 'format = "parquet"' in message
    assert "processor" not in message.split(";")[0] and "\n" not in message


def test_misaligned_record_columns_name_the_fields(tmp_path: Path) -> None:
    from runner._processing.cache import Cache

    with pytest.raises(DataError, match=r"^cache .*: fields have different numbers of rows \('a': 2, 'b': 1\)"):
        Cache(tmp_path, "parquet").write_shard("k", {"a": [1, 2], "b": ["x"]})
    assert not list((tmp_path / "shards").glob("*")) if (tmp_path / "shards").exists() else True


# -- processing-only recipes -----------------------------------------------------------------


def test_a_processing_only_recipe_is_legal_for_runner_process(make: Make, manager: PluginManager) -> None:
    steps = make('items = ["a"]\nformat = "arrow"')
    assert isinstance(steps, ProcessingRecipe) and steps.process[0].name == "echo"
    assert run_steps(steps, manager, report=None)[0].processed == 1


def test_training_still_needs_the_whole_recipe(manager: PluginManager, tmp_path: Path) -> None:
    path = write(
        tmp_path / "steps.toml",
        STEP.format(plugin=tmp_path / "echo_plugin.py", log="", cache=tmp_path / "c", extra='items = ["a"]'),
    )
    with pytest.raises(RecipeError) as caught:
        validate(read_recipe(path), manager.registry, manager.failures)
    text = str(caught.value)
    assert "holds [[process]] steps alone: run them with `runner process`" in text
    assert "missing required table [model]" in text


def test_a_processing_recipe_with_other_tables_is_a_training_recipe(manager: PluginManager, tmp_path: Path) -> None:
    path = write(
        tmp_path / "steps.toml",
        STEP.format(plugin=tmp_path / "echo_plugin.py", log="", cache="c", extra='items = ["a"]')
        + "[model]\nname='lin'\n",
    )
    with pytest.raises(RecipeError, match=r"missing required table \[task\]"):
        validate(read_recipe(path), manager.registry, manager.failures, processing=True)


def test_runner_process_takes_a_full_recipe_too(make: Make, manager: PluginManager, tmp_path: Path) -> None:
    from core_helpers import TOY

    text = TOY.replace('plugins = ["toy_plugin.py"]', "")
    steps = STEP.format(plugin=tmp_path / "echo_plugin.py", log="", cache=tmp_path / "c", extra='items = ["a"]')
    path = write(tmp_path / "full.toml", steps + text)
    assert isinstance(validate(read_recipe(path), manager.registry, manager.failures, processing=True), Recipe)


def test_the_json_schema_accepts_the_processing_only_form(toy_manager: PluginManager) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(recipe_schema(toy_manager.registry))
    assert not list(validator.iter_errors({"process": [{"name": "x"}], "plugins": ["p.py"]}))
    assert list(validator.iter_errors({"process": [{"name": "x"}], "model": {"name": "lin"}}))  # no [task]
    assert list(validator.iter_errors({"plugins": ["p.py"]}))


# -- multi-node: one shared cache ------------------------------------------------------------


def test_a_rank_that_does_not_see_node_0s_marker_stops_with_one_line(
    make: Make, manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNNER_SHARED_CACHE_TIMEOUT", "0.3")
    monkeypatch.setenv("MASTER_ADDR", "node0")
    monkeypatch.setenv("MASTER_PORT", "29500")
    steps = make('items = ["a", "b"]\nformat = "arrow"')
    with pytest.raises(DataError) as caught:  # node 1's cache: node 0 never wrote there
        run_steps(steps, manager, dist=DistArgs(rank=2, world_size=4, local_rank=0, node_rank=1), report=None)
    message = str(caught.value)
    assert message.startswith(f"process[0]: cache {tmp_path / 'c'} is not shared with node 0: rank 2 on node 1")
    assert "nodes/node0-29500-" in message and "cache directory every node shares" in message
    assert "\n" not in message and calls(tmp_path) == []  # nothing processed into the wrong place


def test_node_0_writes_the_marker_other_ranks_wait_for(
    make: Make, manager: PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("RUNNER_SHARED_CACHE_TIMEOUT", "20")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job42")
    steps = make('items = ["a", "b", "c"]\nformat = "arrow"')
    with ThreadPoolExecutor(1) as pool:  # rank 1 starts first and waits for the primary's marker
        waiting = pool.submit(run_steps, steps, manager, dist=DistArgs(rank=1, world_size=2, node_rank=1), report=None)
        primary = run_steps(steps, manager, dist=DistArgs(rank=0, world_size=2), report=None)[0]
        other = waiting.result()[0]
    assert (primary.processed, other.processed) == (2, 1)
    marker = marker_path(tmp_path / "c", primary.step_key)
    assert marker.name == f"job42-{primary.step_key}" and json.loads(marker.read_text())["world_size"] == 2
    assert load_output("echo", tmp_path / "c")["text"].to_pylist() == ['"a"', '"b"', '"c"']


@pytest.mark.slow
def test_the_cli_takes_a_processing_only_recipe(
    cli: Callable[..., Any], manager: PluginManager, tmp_path: Path
) -> None:
    text = STEP.format(plugin="echo_plugin.py", log="", cache="cache", extra='items = ["a", "b"]\nformat = "parquet"')
    write(tmp_path / "steps.toml", text)
    checked = cli("recipe", "check", "steps.toml")
    assert checked.returncode == 0 and "steps.toml: ok" in checked.stdout, checked.stderr
    processed = cli("process", "steps.toml")
    assert processed.returncode == 0 and "processed 2 shard(s)" in processed.stdout, processed.stderr
    trained = cli("run", "steps.toml")
    assert trained.returncode == 2 and "run them with `runner process`" in trained.stderr
    assert "Traceback" not in trained.stderr
