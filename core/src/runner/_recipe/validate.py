"""Validate a parsed recipe against the core schema and the registered components.

Everything is checked before anything runs, and every problem is reported at once,
each with file:line, key path, what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from runner._contract.errors import PluginError, Problem, RecipeError
from runner._contract.recipe import (
    PROCESS_KEYS,
    ComponentConfig,
    LoaderConfig,
    ProcessConfig,
    Recipe,
    RunConfig,
    SplitConfig,
)
from runner._contract.suggest import did_you_mean
from runner._plugins.catalog import KNOWN, install_hint
from runner._plugins.registry import Registry
from runner._recipe.locate import KeyPath
from runner._recipe.source import RecipeSource, format_path
from runner._schema.check import Issue, check_table, describe, found
from runner._schema.fields import Field, schema_from_attrs

TOP_LEVEL: dict[str, str] = {
    "plugins": "list of local plugin modules or .py files to load",
    "run": "table",
    "data": "table",
    "model": "component table",
    "task": "component table",
    "optimizer": "component table",
    "scheduler": "component table",
    "backend": "table of backend parameters",
    "checkpoint": "component table",
    "datamodule": "component table",
    "callbacks": "array of component tables",
    "loggers": "array of component tables",
    "process": "array of component tables",
}
SPLIT_KEYS = ("dataset", "loader", "sampler", "collate", "transforms")
DATA_KEYS = ("train", "val", "test")


class _Validator:
    def __init__(self, source: RecipeSource, registry: Registry, failures: Sequence[object]) -> None:
        self.source = source
        self.registry = registry
        self.failures = failures
        self.problems: list[Problem] = list(source.problems)  # overrides that could not be applied

    def problem(self, path: KeyPath, message: str) -> None:
        location = self.source.sources.find(path)
        self.problems.append(Problem(format_path(path), message, location.file, location.line, location.column))

    def unknown_keys(self, base: KeyPath, table: dict[str, Any], accepted: Sequence[str]) -> None:
        for key in table:
            if key not in accepted:
                hint = did_you_mean(key, accepted)
                self.problem(
                    (*base, key), f"unknown key ({hint})" if hint else f"unknown key; accepted: {', '.join(accepted)}"
                )

    def issues(self, base: KeyPath, issues: list[Issue]) -> None:
        for path, message in issues:
            self.problem((*base, *path), message)

    # -- sections --------------------------------------------------------------

    def table(self, path: KeyPath, value: Any) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(path, f"expected table, found {found(value)}")
        return None

    def attrs_section(self, path: KeyPath, value: Any, cls: type) -> Any:
        table = self.table(path, value if value is not None else {})
        if table is None:
            return cls()
        converted, issues = check_table(table, schema_from_attrs(cls).fields)
        self.issues(path, issues)
        # Keep the valid values (defaults for the rest) so later checks see what was written.
        bad = {issue_path[0] for issue_path, _ in issues if issue_path}
        return cls(**{key: value for key, value in converted.items() if key not in bad})

    def component(self, kind: str, path: KeyPath, value: Any, *, name: str | None = None) -> ComponentConfig | None:
        """A ``{name = ..., params...}`` table (or a params table whose name comes from elsewhere)."""
        table = self.table(path, value)
        if table is None:
            return None
        table = dict(table)
        if name is None:
            raw_name = table.pop("name", None)
            if raw_name is None:
                self.problem(path, f"missing required key 'name' (a registered {kind})")
                return None
            if not isinstance(raw_name, str):
                self.problem((*path, "name"), f"expected str, found {found(raw_name)}")
                return None
            name, name_path = raw_name, (*path, "name")
        else:
            name_path = path
        component = self.registry.find(kind, name)
        if component is None:
            self.problem(name_path, self.unknown(kind, name))
            return None
        try:
            schema = component.schema
        except Exception as exc:
            self.problem(name_path, f"cannot read parameters of {kind} {name!r} ({component.plugin}): {exc}")
            return None
        params, issues = check_table(table, schema.fields, open_table=schema.open)
        self.issues(path, issues)
        invalid = {issue[0][0] for issue in issues if issue[0]}
        self.registered_names(path, params, schema.fields, invalid)
        try:  # the declaration's @runner.check rules, on the parameters that passed their own checks
            self.issues(path, component.check_params(params, invalid=invalid))
        except PluginError as exc:
            self.problem(name_path, str(exc))
        return ComponentConfig(kind=kind, name=name, params=params, path=format_path(path))

    def registered_names(self, path: KeyPath, params: dict[str, Any], fields: dict[str, Field], bad: set[Any]) -> None:
        """Parameters declared ``param(registered=KIND)`` must name registered components
        (functions a plugin registered: recipes never name import paths)."""
        for key, field in fields.items():
            if field.registered is None or key in bad or params.get(key) is None:
                continue
            value = params[key]
            named = [((key,), value)] if isinstance(value, str) else [((key, i), v) for i, v in enumerate(value)]
            for where, name in named:
                if isinstance(name, str) and self.registry.find(field.registered, name) is None:
                    self.problem((*path, *where), self.unknown(field.registered, name))

    def unknown(self, kind: str, name: str) -> str:
        clash = self.registry.clash(kind, name)
        if clash is not None:  # two plugins registered the name: neither is picked
            return clash
        message = self.registry.unknown_message(kind, name)
        hint = install_hint(kind, name)
        # An installed provider that failed to load is explained by its note below, not "pip install".
        failed = {getattr(getattr(f, "plugin", None), "dist", None) for f in self.failures}
        if hint and KNOWN.get((kind, name)) not in failed:
            message += f"; {hint}"
        if kind == "function":
            message += "; a plugin registers functions with register_functions (a recipe's plugins = [...] file can)"
        for failure in self.failures:
            message += f"; note: {failure}"
        return message

    def components(self, kind: str, path: KeyPath, value: Any) -> tuple[ComponentConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(path, f"expected array of tables ([[{path[-1]}]]), found {found(value)}")
            return ()
        built = [self.component(kind, (*path, i), item) for i, item in enumerate(value)]
        return tuple(c for c in built if c is not None)

    def process_steps(self, path: KeyPath, value: Any) -> tuple[ComponentConfig, ...]:
        """``[[process]]`` steps: framework keys (:class:`ProcessConfig`) plus processor parameters."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(path, f"expected array of tables ([[{path[-1]}]]), found {found(value)}")
            return ()
        steps = []
        for index, item in enumerate(value):
            table = self.table((*path, index), item)
            if table is None:
                continue
            framework = {k: v for k, v in table.items() if k in PROCESS_KEYS}
            rest = {k: v for k, v in table.items() if k not in PROCESS_KEYS}
            keys = self.attrs_section((*path, index), framework, ProcessConfig)
            executor = self.executor((*path, index, "executor"), keys.executor)
            step = self.component("processor", (*path, index), rest)
            if step is not None:
                steps.append(attrs.evolve(step, framework={**attrs.asdict(keys), "executor": executor}))
        return tuple(steps)

    def executor(self, path: KeyPath, value: str | dict[str, Any]) -> str | dict[str, Any]:
        """A step's executor: a registered name, or ``{ name = ..., parameters }`` (resolved
        with defaults; a name stays a name when the executor has no parameters)."""
        if isinstance(value, str):
            table: dict[str, Any] = {}
            config = self.component("executor", path, table, name=value)
        else:
            config = self.component("executor", path, value)
        if config is None:
            return "process"
        return {"name": config.name, **config.params} if config.params else config.name

    def resumable_sampler(self, sampler: ComponentConfig) -> None:
        """With checkpointing, a sampler must implement the state protocol (helios' TypeError)."""
        from runner._schema.resumable import declared_resumable

        component = self.registry.find("sampler", sampler.name)
        if component is None:
            return
        verdict = declared_resumable(component)
        if verdict is False:
            self.problem(
                (*sampler.path.split("."), "name"),
                f"TypeError: sampler {sampler.name!r} ({component.plugin}) is not resumable: it has no "
                "state_dict()/load_state_dict(), so a checkpointed run could not resume mid-epoch; use a "
                "resumable sampler (random, sequential, distributed, weighted, bucket_by_length) or derive "
                "yours from runner._data.samplers.IndexSampler",
            )

    def split(self, path: KeyPath, value: Any) -> SplitConfig | None:
        table = self.table(path, value)
        if table is None:
            return None
        self.unknown_keys(path, table, SPLIT_KEYS)
        dataset = None
        if "dataset" not in table:  # still check the rest of the split
            self.problem(path, "missing required key 'dataset' (a table with name = a registered dataset)")
        else:
            dataset = self.component("dataset", (*path, "dataset"), table["dataset"])
        loader_table = table.get("loader")
        loader_component = None
        if isinstance(loader_table, dict) and "name" in loader_table:
            # A named loader component: standard keys configure LoaderConfig, the rest are its own.
            standard = {a.name for a in attrs.fields(LoaderConfig)}
            own = {k: v for k, v in loader_table.items() if k not in standard}
            loader_component = self.component("loader", (*path, "loader"), own)
            loader_table = {k: v for k, v in loader_table.items() if k in standard}
        loader = self.attrs_section((*path, "loader"), loader_table, LoaderConfig)
        sampler = self.component("sampler", (*path, "sampler"), table["sampler"]) if "sampler" in table else None
        collate = self.component("collate", (*path, "collate"), table["collate"]) if "collate" in table else None
        transforms = self.components("transform", (*path, "transforms"), table.get("transforms"))
        if dataset is None:
            return None
        return SplitConfig(str(path[-1]), dataset, loader, sampler, collate, transforms, loader_component)

    def keyed_splits(self, path: KeyPath, value: Any) -> dict[str, SplitConfig]:
        table = self.table(path, value) if value is not None else None
        if table is None:
            return {}
        if "dataset" in table:
            self.problem(path, f"expected loaders by key, e.g. [{format_path(path)}.main] with dataset = ...")
            return {}
        splits = {key: self.split((*path, key), item) for key, item in table.items()}
        return {key: split for key, split in splits.items() if split is not None}

    # -- whole recipe ----------------------------------------------------------

    def recipe(self) -> Recipe | None:
        data = self.source.data
        self.unknown_keys((), data, list(TOP_LEVEL))
        plugins = data.get("plugins", [])
        if not (isinstance(plugins, list) and all(isinstance(p, str) for p in plugins)):
            self.problem(("plugins",), f"expected list of str, found {found(plugins)}")
        run: RunConfig = self.attrs_section(("run",), data.get("run"), RunConfig)
        written = data["run"] if isinstance(data.get("run"), dict) else {}
        if run.epochs is None and run.max_steps is None and "epochs" not in written and "max_steps" not in written:
            self.problem(("run",), "set run.epochs or run.max_steps (expected int)")
        backend_params = data.get("backend", {})
        if isinstance(backend_params, dict) and "name" in backend_params:
            self.problem(
                ("backend", "name"), "choose the backend with [run] backend = NAME; [backend] holds its parameters"
            )
            backend_params = {k: v for k, v in backend_params.items() if k != "name"}
        backend = None
        if self.registry.find("backend", run.backend) is None:
            self.problem(("run", "backend"), self.unknown("backend", run.backend))
        else:
            backend = self.component("backend", ("backend",), backend_params, name=run.backend)

        raw_data = self.table(("data",), data.get("data", {})) or {}
        self.unknown_keys(("data",), raw_data, DATA_KEYS)
        train = self.split(("data", "train"), raw_data["train"]) if "train" in raw_data else None
        val = self.keyed_splits(("data", "val"), raw_data.get("val"))
        test = self.keyed_splits(("data", "test"), raw_data.get("test"))
        datamodule = self.component("datamodule", ("datamodule",), data["datamodule"]) if "datamodule" in data else None
        if "train" not in raw_data and "datamodule" not in data:
            self.problem(("data",), "missing required table [data.train] (or a [datamodule])")

        required: dict[str, ComponentConfig | None] = {}
        for kind in ("model", "task"):
            if kind not in data:
                self.problem((kind,), f"missing required table [{kind}] with name = a registered {kind}")
                required[kind] = None
            else:
                required[kind] = self.component(kind, (kind,), data[kind])
        # Without [optimizer], the task or model provides them (get_optimizers_schedulers).
        optimizer = self.component("optimizer", ("optimizer",), data["optimizer"]) if "optimizer" in data else None
        scheduler = self.component("scheduler", ("scheduler",), data["scheduler"]) if "scheduler" in data else None
        if "scheduler" in data and "optimizer" not in data:
            self.problem(("scheduler",), "a [scheduler] needs an [optimizer] table to schedule")
        checkpoint = (
            self.component("checkpointer", ("checkpoint",), data["checkpoint"]) if "checkpoint" in data else None
        )
        callbacks = self.components("callback", ("callbacks",), data.get("callbacks"))
        loggers = self.components("logger", ("loggers",), data.get("loggers"))
        process = self.process_steps(("process",), data.get("process"))
        if checkpoint is not None:
            for split in [train, *val.values(), *test.values()]:
                if split is not None and split.sampler is not None:
                    self.resumable_sampler(split.sampler)

        if self.problems:
            return None
        assert required["model"] and required["task"] and backend
        recipe = Recipe(
            path=self.source.path,
            run=run,
            model=required["model"],
            task=required["task"],
            optimizer=optimizer,
            backend=backend,
            resolved={},
            train=train,
            val=val,
            test=test,
            scheduler=scheduler,
            callbacks=callbacks,
            loggers=loggers,
            checkpoint=checkpoint,
            datamodule=datamodule,
            process=process,
            plugins=tuple(plugins),
        )
        return attrs.evolve(recipe, resolved=resolve(recipe))


def _split_table(split: SplitConfig) -> dict[str, Any]:
    loader = split.loader.to_dict()
    if split.loader_component is not None:
        loader = {**split.loader_component.table(), **loader}
    table: dict[str, Any] = {"dataset": split.dataset.table(), "loader": loader}
    if split.sampler is not None:
        table["sampler"] = split.sampler.table()
    if split.collate is not None:
        table["collate"] = split.collate.table()
    if split.transforms:
        table["transforms"] = [t.table() for t in split.transforms]
    return table


def resolve(recipe: Recipe) -> dict[str, Any]:
    """The fully resolved recipe tree: every section and every default written out."""
    tree: dict[str, Any] = {}
    if recipe.plugins:
        tree["plugins"] = list(recipe.plugins)
    tree["run"] = attrs.asdict(recipe.run)
    data: dict[str, Any] = {}
    if recipe.train is not None:
        data["train"] = _split_table(recipe.train)
    for section in ("val", "test"):
        splits: dict[str, SplitConfig] = getattr(recipe, section)
        if splits:
            data[section] = {key: _split_table(split) for key, split in splits.items()}
    if data:
        tree["data"] = data
    if recipe.datamodule is not None:
        tree["datamodule"] = recipe.datamodule.table()
    tree["model"] = recipe.model.table()
    tree["task"] = recipe.task.table()
    if recipe.optimizer is not None:
        tree["optimizer"] = recipe.optimizer.table()
    if recipe.scheduler is not None:
        tree["scheduler"] = recipe.scheduler.table()
    tree["backend"] = dict(recipe.backend.params)
    if recipe.checkpoint is not None:
        tree["checkpoint"] = recipe.checkpoint.table()
    for section in ("callbacks", "loggers", "process"):
        items: tuple[ComponentConfig, ...] = getattr(recipe, section)
        if items:
            tree[section] = [c.table() for c in items]
    return tree


def validate(source: RecipeSource, registry: Registry, failures: Sequence[object] = ()) -> Recipe:
    """Validate ``source``; raise :class:`RecipeError` listing every problem."""
    validator = _Validator(source, registry, failures)
    recipe = validator.recipe()
    if recipe is None or validator.problems:
        raise RecipeError(sorted(validator.problems, key=lambda p: (p.file != source.path, p.line or 0, p.path)))
    return recipe


__all__ = ["describe", "resolve", "validate"]
