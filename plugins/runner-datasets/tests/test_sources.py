"""Sources (tensors, csv, jsonl, list, generator, processed), combinators and transforms."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from runner import BuildContext, DataError, PluginInfo, Registry, RunnerError, hookimpl
from runner._data.build import dataset_builder, make_loader
from runner._data.loader import IterableLoader, Loader
from runner._plugins.manager import PluginManager
from runner_datasets import combinators, components, sources
from runner_datasets import plugin as datasets_plugin
from runner_datasets.transforms import Map, Normalize, RandomNoise


def digits_table(split: str = "train") -> dict[str, Any]:
    return {"name": "digits", "split": split}


def registry() -> Registry:
    """runner-datasets plus this module's functions (``produce_list``, ``double``, ...)."""
    manager = PluginManager(use_entry_points=False).load()
    manager.add(datasets_plugin, PluginInfo("datasets", "runner-datasets", "test"))
    manager.add(sys.modules[__name__], PluginInfo("functions", "tests", "test"))
    return manager.registry


def builder(table: Any, where: str = "dataset") -> Any:
    context = BuildContext(recipe=None, seed=0, run_dir=Path("."))  # type: ignore[arg-type]
    return dataset_builder(registry(), context, "dataset")(table, where)


# -- tensors -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".pt"])
def test_tensor_files_load_with_fields_in_order(tmp_path: Path, suffix: str) -> None:
    x, y = torch.randn(6, 3), torch.arange(6)
    path = tmp_path / f"data{suffix}"
    if suffix == ".safetensors":
        save_file({"features": x, "labels": y}, str(path))
    elif suffix == ".npz":
        np.savez(path, features=x.numpy(), labels=y.numpy())
    else:
        torch.save({"features": x, "labels": y}, path)
    dataset = components.Tensors(path=str(path), fields=["features", "labels"]).build()
    assert torch.equal(dataset.tensors[0], x) and torch.equal(dataset.tensors[1], y)
    assert dataset.meta == {"in_features": 3, "num_classes": 6, "task": "classification"}


def test_pt_files_never_unpickle_arbitrary_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump({"x": object()}, handle)
    with pytest.raises(DataError, match=r"evil\.pt: cannot load"):
        components.Tensors(path=str(path)).build()


def test_tensor_file_errors_name_the_file_and_suggest_keys(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.safetensors: no such file"):
        components.Tensors(path=str(tmp_path / "missing.safetensors")).build()
    path = tmp_path / "d.safetensors"
    save_file({"features": torch.zeros(2, 2), "labels": torch.zeros(3)}, str(path))
    with pytest.raises(DataError, match="no key 'label' \\(did you mean 'labels'\\?\\)"):
        components.Tensors(path=str(path), fields=["features", "label"]).build()
    with pytest.raises(DataError, match="same \\(non-zero\\) first dimension"):
        components.Tensors(path=str(path)).build()


def test_tensor_file_split_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "s.safetensors"
    save_file({"train/x": torch.zeros(4, 1), "val/x": torch.ones(2, 1)}, str(path))
    assert len(components.Tensors(path=str(path), split="valid").build()) == 2


# -- csv and jsonl -------------------------------------------------------------------


CSV = "a,b,label\n1,2,0\n3,4,1\n\n5,6,1\n"


def test_csv_columns_become_tensors(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    dataset = components.Csv(path=str(path), label="label").build()
    assert dataset.tensors[0].tolist() == [[1, 2], [3, 4], [5, 6]] and dataset.tensors[0].dtype == torch.float32
    assert dataset.tensors[1].tolist() == [0, 1, 1] and dataset.tensors[1].dtype == torch.int64
    only_b = components.Csv(path=str(path), features=["b"], label="label", label_dtype="float32").build()
    assert only_b.tensors[0].tolist() == [[2], [4], [6]] and only_b.meta["task"] == "regression"


def test_csv_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,0\n3,4\n")
    with pytest.raises(DataError, match=r"bad\.csv:3: malformed row: expected 3 fields, found 2"):
        components.Csv(path=str(path), label="label").build()
    path.write_text("a,b,label\n1,2,0\n3,x,1\n")
    with pytest.raises(DataError, match=r"bad\.csv:3: column 'b': cannot read 'x' as a number"):
        components.Csv(path=str(path), label="label").build()


def test_csv_wrong_column_suggests_the_right_one(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(CSV)
    with pytest.raises(DataError, match=r"d\.csv:1: no column 'lable' \(did you mean 'label'\?\)"):
        components.Csv(path=str(path), label="lable").build()


def test_jsonl_fields_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"x": [1, 2], "w": 3, "y": 1}\n\n{"x": [4, 5], "w": 6, "y": 0}\n')
    dataset = components.Jsonl(path=str(path), features=["x", "w"], label="y").build()
    assert dataset.tensors[0].tolist() == [[1, 2, 3], [4, 5, 6]] and dataset.tensors[1].tolist() == [1, 0]
    with pytest.raises(DataError, match=r"d\.jsonl:1: no field 'z' \(did you mean 'x'\?\)|d\.jsonl:1: no field 'z'"):
        components.Jsonl(path=str(path), features=["z"]).build()
    path.write_text('{"x": 1}\n{"x": \n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        components.Jsonl(path=str(path), features=["x"]).build()


# -- list and generator ------------------------------------------------------------------


def produce_list(n: int = 3, split: str | None = None) -> list[Any]:
    return [(torch.tensor([float(i)]), i) for i in range(n)]


def produce_stream(n: int = 5) -> Any:
    for i in range(n):
        yield torch.tensor([float(i)]), torch.tensor(i)


def one_arg(sample: Any) -> Any:
    return sample


@hookimpl
def register_functions(register: Any) -> None:
    register("produce_list", produce_list)
    register("produce_stream", produce_stream)
    register("double", double)
    register("one_arg", one_arg)


def test_list_source_inline_and_producer() -> None:
    assert len(sources.list_dataset(items=[1, 2, 3])) == 3
    dataset = sources.list_dataset(producer="produce_list", kwargs={"n": 4}, split="train", registry=registry())
    assert len(dataset) == 4 and dataset[2][1] == 2
    assert len(sources.list_dataset(producer=produce_list)) == 3  # from Python: the function itself
    with pytest.raises(DataError, match="no items"):
        sources.list_dataset()
    with pytest.raises(RunnerError, match=r"unknown function 'produce_lst' \(did you mean 'produce_list'"):
        sources.list_dataset(producer="produce_lst", registry=registry())


def test_an_import_path_is_not_a_producer(tmp_path: Path) -> None:
    """Recipes name registered functions: an import path is an unknown name, never imported."""
    for reference in ("subprocess:call", "os:system", "builtins:eval"):
        with pytest.raises(RunnerError, match=f"unknown function {reference!r}"):
            sources.list_dataset(
                producer=reference, kwargs={"args": ["touch", str(tmp_path / "x")]}, registry=registry()
            )
        with pytest.raises(RunnerError, match=f"unknown function {reference!r}"):
            sources.generator_dataset(producer=reference, registry=registry())
        with pytest.raises(RunnerError, match=f"unknown function {reference!r}"):
            Map(reference, registry=registry())
    assert not (tmp_path / "x").exists()


def test_generator_source_known_and_unknown_length() -> None:
    known = sources.generator_dataset(producer="produce_stream", kwargs={"n": 7}, length=5, registry=registry())
    assert len(known) == 5 and len(list(known)) == 5
    unknown = sources.generator_dataset(producer="produce_stream", kwargs={"n": 7}, registry=registry())
    with pytest.raises(TypeError, match="no known length"):
        len(unknown)
    loader = make_loader(unknown, {"batch_size": 3})
    assert isinstance(loader, IterableLoader)
    assert [b[1].tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(TypeError, match="no known length"):
        len(loader)


# -- combinators -----------------------------------------------------------------------


def test_concat_keeps_in_memory_tensors() -> None:
    both = components.Concat(datasets=[digits_table("val"), digits_table("test")]).build(build_dataset=builder)
    val, test = builder(digits_table("val")), builder(digits_table("test"))
    assert len(both) == len(val) + len(test)
    loader = make_loader(both, {"batch_size": 64})
    assert isinstance(loader, Loader) and loader.fast_path


def test_concat_of_general_datasets() -> None:
    table = {"name": "list", "items": [[1.0], [2.0]]}
    both = components.Concat(datasets=[table, table]).build(build_dataset=builder)
    assert len(both) == 4 and both[3] == [2.0]


def test_subset_and_errors() -> None:
    part = components.Subset(dataset=digits_table("val"), start=10, stop=20).build(build_dataset=builder)
    full = builder(digits_table("val"))
    assert torch.equal(part.tensors[0], full.tensors[0][10:20])
    picked = components.Subset(dataset=digits_table("val"), indices=[5, 1]).build(build_dataset=builder)
    assert torch.equal(picked.tensors[1], full.tensors[1][[5, 1]])
    with pytest.raises(DataError, match="out of range"):
        components.Subset(dataset=digits_table("val"), indices=[100000]).build(build_dataset=builder)


def test_random_split_parts_are_disjoint_cover_and_depend_only_on_the_seed() -> None:
    table = {"name": "list", "items": list(range(23))}
    parts = [
        components.RandomSplit(dataset=table, fractions=[0.6, 0.2, 0.2], part=p, split_seed=4).build(
            build_dataset=builder
        )
        for p in ("train", "val", 2)
    ]
    items = [[part[i] for i in range(len(part))] for part in parts]
    assert [len(i) for i in items] == [14, 5, 4]
    assert sorted(i for part in items for i in part) == list(range(23))
    again = components.RandomSplit(dataset=table, fractions=[0.6, 0.2, 0.2], part=0, split_seed=4).build(
        build_dataset=builder
    )
    assert [again[i] for i in range(len(again))] == items[0]
    with pytest.raises(DataError, match="sum to 1"):
        components.RandomSplit(dataset=table, fractions=[0.5, 0.2], part=0).build(build_dataset=builder)
    with pytest.raises(DataError, match="unknown split 'trian'; expected one of"):
        components.RandomSplit(dataset=table, fractions=[0.5, 0.5], part="trian").build(build_dataset=builder)


def test_nested_tables_are_validated() -> None:
    with pytest.raises(Exception, match=r"dataset\.datasets\[1\].*split"):
        combinators.concat(datasets=[digits_table(), {"name": "digits", "split": "bogus"}], build_dataset=builder)


def test_combinators_need_the_framework_builder() -> None:
    """No fallback that loads plugins through private core modules."""
    with pytest.raises(DataError, match="build_dataset="):
        combinators.concat(datasets=[digits_table()])


def test_nested_tables_are_checked_by_their_rules() -> None:
    nested = {"name": "digits", "split": "train", "val_fraction": 0.6, "test_fraction": 0.5}
    with pytest.raises(RunnerError, match=r"dataset\.datasets\[0\]: val_fraction: val_fraction \+ test_fraction"):
        components.Concat(datasets=[nested]).build(build_dataset=builder)


# -- transforms ------------------------------------------------------------------------


def test_normalize_folds_into_tensors_and_keeps_the_fast_path() -> None:
    data = torch.utils.data.TensorDataset(torch.arange(12.0).reshape(6, 2), torch.arange(6))
    normalize = Normalize(mean=[1.0, 2.0], std=[2.0, 4.0])
    loader = make_loader(data, {"batch_size": 6}, transforms=[normalize])
    assert isinstance(loader, Loader) and loader.fast_path
    ((x, _),) = list(loader)
    expected = torch.stack([normalize(data[i], np.random.default_rng(0))[0] for i in range(6)])
    assert torch.allclose(x, expected)


def test_random_noise_uses_only_the_given_rng() -> None:
    noise = RandomNoise(std=0.5)
    sample = (torch.zeros(3), torch.tensor(1))
    a = noise(sample, np.random.default_rng([1, 2, 3]))
    b = noise(sample, np.random.default_rng([1, 2, 3]))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], sample[0]) and a[1] == 1
    data = torch.utils.data.TensorDataset(torch.zeros(8, 2), torch.arange(8))
    loader = make_loader(data, {"batch_size": 4}, transforms=[noise])
    assert isinstance(loader, Loader) and not loader.fast_path  # random per-sample work: general path
    assert not torch.equal(next(iter(loader))[0], torch.zeros(4, 2))


def double(item: Any, rng: np.random.Generator) -> Any:
    return item[0] * 2, item[1]


def test_map_transform_for_samples_and_batches() -> None:
    data = torch.utils.data.TensorDataset(torch.ones(4, 1), torch.arange(4))
    per_sample = make_loader(data, {"batch_size": 2}, transforms=[Map("double", registry=registry())])
    per_batch = make_loader(data, {"batch_size": 2}, transforms=[Map("double", batch=True, registry=registry())])
    assert [b[0].sum().item() for b in per_sample] == [b[0].sum().item() for b in per_batch] == [4.0, 4.0]
    assert pickle.loads(pickle.dumps(Map("double", registry=registry()))).fn is double
    assert Map(double).fn is double


def test_a_map_function_of_the_wrong_signature_fails_at_build() -> None:
    with pytest.raises(DataError, match=r"map: function 'one_arg' must take \(sample, rng\), but one_arg\(sample"):
        Map("one_arg", registry=registry())
