"""What to predict on: one of the recipe's splits, a dataset table, or a data file.

Whatever the source, it is batched like one of the recipe's splits (its loader table,
collate and transforms), in dataset order and never shuffled:

- ``--split test`` / ``--split val.main`` / ``--split train``: that split as the recipe
  defines it (``test`` alone means ``test.main``, or the only test split);
- ``--data '{ name = "digits", split = "test" }'``: a dataset table, checked like a
  recipe's, batched like the recipe's first test split (else validation, else train);
- ``--data new.csv``: a file, read by the registered dataset named like its extension
  (``csv``, ``jsonl``) with the parameters of the recipe's table of that dataset (without
  ``path``, ``split`` and ``label``; ``features`` from the training data's ``meta`` when
  the table does not name them), so a file with the training file's columns predicts
  as it is, with or without its label column.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from runner._contract.errors import RunnerError
from runner._contract.recipe import ComponentConfig, SplitConfig

if TYPE_CHECKING:
    from runner._contract.recipe import Recipe
    from runner._plugins.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

#: Parameters a data file's dataset does not take from the recipe's table.
_NOT_COPIED = frozenset({"path", "split", "label"})


@attrs.frozen
class PredictData:
    """The split to predict on (dataset, loader, collate, transforms) and its label for file names."""

    label: str
    split: SplitConfig


def splits_of(recipe: Recipe) -> dict[str, SplitConfig]:
    """Every split of the recipe by its ``--split`` name: ``train``, ``val.KEY``, ``test.KEY``."""
    found: dict[str, SplitConfig] = {}
    if recipe.train is not None:
        found["train"] = recipe.train
    found.update({f"val.{key}": split for key, split in recipe.val.items()})
    found.update({f"test.{key}": split for key, split in recipe.test.items()})
    return found


def pick_split(recipe: Recipe, name: str) -> tuple[str, SplitConfig]:
    """``(full name, split)`` for ``train``, ``val[.KEY]``, ``test[.KEY]``."""
    splits = splits_of(recipe)
    known = ", ".join(splits) or "none"
    if name in splits:
        return name, splits[name]
    stage, _, key = name.partition(".")
    keyed = {"val": recipe.val, "validation": recipe.val, "test": recipe.test}.get(stage)
    if keyed is not None and not key:
        if "main" in keyed:
            return f"{stage}.main", keyed["main"]
        if len(keyed) == 1:
            only = next(iter(keyed))
            return f"{stage}.{only}", keyed[only]
        if keyed:
            raise RunnerError(f"--split {name}: the recipe has several {stage} splits; choose one of {known}")
    raise RunnerError(f"--split {name}: no such split in the recipe; choose one of {known}")


def reference_split(recipe: Recipe) -> SplitConfig:
    """The split whose loader settings batch other data: the first test split, else the
    first validation split, else train."""
    for group in (recipe.test, recipe.val):
        if group:
            return next(iter(group.values()))
    if recipe.train is None:
        raise RunnerError("the recipe has no data splits to take loader settings from")
    return recipe.train


def for_prediction(split: SplitConfig, label: str, dataset: ComponentConfig | None = None) -> SplitConfig:
    """``split`` read in order, every sample once: no sampler, no shuffle, no dropped tail."""
    return attrs.evolve(
        split,
        key=label,
        dataset=dataset or split.dataset,
        loader=attrs.evolve(split.loader, shuffle=False, drop_last=False),
        sampler=None,
        loader_component=None,
    )


def parse_table(text: str) -> dict[str, Any]:
    """``{ name = "digits", split = "test" }`` as a dict (a one-line error otherwise)."""
    try:
        table = tomllib.loads(f"data = {text.strip()}")["data"]
    except tomllib.TOMLDecodeError as exc:
        raise RunnerError(f"--data {text}: not a TOML inline table ({exc})") from None
    if not isinstance(table, dict) or not isinstance(table.get("name"), str):
        raise RunnerError(
            f'--data {text}: expected a table naming a dataset, e.g. {{ name = "digits", split = "test" }}'
        )
    return table


def dataset_config(table: dict[str, Any], registry: Registry, where: str) -> ComponentConfig:
    """A dataset table checked against its registered schema (defaults filled in)."""
    from runner._recipe.source import format_path
    from runner._schema.check import check_table

    name = table["name"]
    component = registry.get("dataset", name)
    params = {k: v for k, v in table.items() if k != "name"}
    checked, issues = check_table(params, component.schema.fields, open_table=component.schema.open)
    if issues:
        shown = "; ".join(f"{format_path(path) or 'table'}: {message}" for path, message in issues)
        raise RunnerError(f"{where}: dataset {name!r} (plugin {component.plugin}): {shown}")
    return ComponentConfig(kind="dataset", name=name, params=checked, path=where)


def file_table(path: Path, recipe: Recipe, registry: Registry, meta: dict[str, Any]) -> dict[str, Any]:
    """The dataset table that reads ``path`` (see the module doc)."""
    name = path.suffix.lstrip(".").lower()
    if not name or registry.find("dataset", name) is None:
        raise RunnerError(
            f"--data {path}: no registered dataset reads {path.suffix or 'extensionless'} files (one named "
            f'{name!r}); pass a dataset table instead: --data \'{{ name = "...", path = "{path}" }}\''
        )
    fields = registry.get("dataset", name).schema.fields
    table: dict[str, Any] = {"name": name}
    splits = [s for s in [recipe.train, *recipe.test.values(), *recipe.val.values()] if s is not None]
    model = next((s.dataset for s in splits if s.dataset.name == name), None)
    if model is not None:
        table.update({k: v for k, v in model.params.items() if k not in _NOT_COPIED and k in fields})
    if "features" in fields and not table.get("features") and isinstance(meta.get("features"), list):
        table["features"] = list(meta["features"])
    table["path"] = str(path)
    return table


def select(
    recipe: Recipe, registry: Registry, meta: dict[str, Any], *, data: str | None, split: str | None
) -> PredictData:
    """The data ``--data`` or ``--split`` names (exactly one of them)."""
    if (data is None) == (split is None):
        raise RunnerError(
            "say what to predict on: --split NAME (a split of the run's recipe: test, val.main, ...) or "
            "--data TABLE_OR_FILE (a dataset table or a data file), not both"
            if data is not None
            else "say what to predict on: --split test (a split of the run's recipe) or --data TABLE_OR_FILE"
        )
    if split is not None:
        label, chosen = pick_split(recipe, split)
        return PredictData(label, for_prediction(chosen, label))
    assert data is not None
    if data.lstrip().startswith("{"):
        table = parse_table(data)
        label = str(table["name"]) + (f"-{table['split']}" if isinstance(table.get("split"), str) else "")
    else:
        file = Path(data)
        if not file.is_file():
            raise RunnerError(f"--data {data}: no such file (or pass a dataset table: --data '{{ name = ... }}')")
        table = file_table(file, recipe, registry, meta)
        label = file.stem
    config = dataset_config(table, registry, "--data")
    return PredictData(label, for_prediction(reference_split(recipe), label, config))


def split_batches(
    recipe: Recipe, registry: Registry, run_dir: Path, meta: dict[str, Any], split: str, device: Any = "cpu"
) -> Iterator[Any]:
    """The batches of the recipe's ``split`` in dataset order, built in this process."""
    from runner._contract.context import BuildContext
    from runner._data.build import build_dataset, build_loader

    label, chosen = pick_split(recipe, split)
    config = for_prediction(chosen, label)
    ctx = BuildContext(recipe=recipe, seed=recipe.run.seed, run_dir=run_dir, device=device, train_dataset=Meta(meta))
    dataset = build_dataset(config, registry, ctx)
    on_cuda = getattr(device, "type", str(device)) == "cuda"
    yield from build_loader(config, dataset, registry, ctx, train=False, on_cuda=on_cuda)


class Meta:
    """Stands in for the training dataset where only its ``meta`` is known (``model.json``):
    model factories read sizes from ``ctx.meta``; the data need not exist."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
