"""The recipe's grammar, declared once.

Every table and key a recipe may hold is declared here, as a tree of nodes, and nowhere
else: validation and resolution (:mod:`runner._recipe.validate`), the JSON Schema
(:mod:`runner._schema.export`), shell completion (:mod:`runner._cli.complete`),
``runner explain``, the merge rules of composition and the generated recipe reference
(``tools/mkdocs_hooks.py``) all walk this tree. Like tox 4's ``ConfigSet``, one
declaration drives parsing, defaults, display and docs.

Adding a top-level table is one line in :data:`RECIPE`, e.g.::

    Key("profile", Fields(ProfileConfig), "table [profile]", "what the profiler records"),

and the validated value is ``recipe.sections["profile"]``. A key of ``[run]`` is one
field of :class:`~runner._contract.recipe.RunConfig`.

The nodes are plain data (this module imports nothing but the contract): the
interpreters live with their jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from runner._contract.recipe import (
    ComponentConfig,
    LoaderConfig,
    ProcessConfig,
    ProcessingRecipe,
    Recipe,
    RunConfig,
    SplitConfig,
)
from runner._contract.sweep import SweepConfig

KeyPath = tuple[str | int, ...]


@attrs.frozen
class Fields:
    """A table of the core's own keys, the fields of an attrs class (``[run]``, loader tables).

    ``component``: a ``name`` key makes the rest of the table a component of this kind
    next to the standard keys (``loader = { name = "async", ... }``); the typed value is
    then ``(instance, ComponentConfig | None)``. ``one_of``: at least one of these keys
    must be written.
    """

    cls: type
    component: str | None = None
    one_of: tuple[str, ...] = ()


@attrs.frozen
class Component:
    """A component table: ``name`` = a registered name of ``kind``, plus its parameters.

    ``framework``: an attrs class of keys the core reads next to the parameters
    (``[[process]]`` steps); its fields named in ``refs`` name components themselves (a
    name or a table: a step's ``executor``). ``chosen_by``: the name is written elsewhere
    (``[backend]`` holds the parameters of ``[run] backend``). ``default_name``: the
    component used when the table has no ``name``.
    """

    kind: str
    framework: type | None = None
    refs: tuple[tuple[str, str], ...] = ()
    chosen_by: KeyPath | None = None
    default_name: str | None = None

    @property
    def framework_keys(self) -> tuple[str, ...]:
        return tuple(a.alias or a.name for a in attrs.fields(self.framework)) if self.framework else ()


@attrs.frozen
class Array:
    """An array of tables (``[[callbacks]]``), each an ``item``."""

    item: Node


@attrs.frozen
class Keyed:
    """A table of named items (``[data.val.main]``, ``[data.val.noisy]``); ``example`` names one in messages."""

    item: Node
    example: str = "main"
    noun: str = "items"


@attrs.frozen
class Strings:
    """An array of strings (``plugins``)."""

    doc: str = ""


@attrs.frozen
class Key:
    """One key of a :class:`Table`: its node, how it is written and what it is for.

    ``required``: the message when it is missing (``""``: optional); ``unless``: a
    top-level key whose presence makes it optional; ``needs``: a top-level key it cannot
    do without. ``attr``: the field of the table's typed value it fills (default: its name).
    """

    name: str
    node: Node
    form: str
    doc: str
    required: str = ""
    unless: str | None = None
    needs: str | None = None
    needs_why: str = "work with"
    attr: str | None = None

    @property
    def field(self) -> str:
        return self.attr or self.name


@attrs.frozen
class Table:
    """A table with fixed keys; ``make(values, key)`` builds its typed value from the keys'
    typed values (``None`` for those left out) and the table's own key."""

    keys: tuple[Key, ...]
    make: Callable[[dict[str, Any], str | int], Any] | None = None
    name: str = ""
    """A name for a table used in several places (the JSON Schema's ``$defs``)."""

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)

    def with_key(self, key: Key) -> Table:
        """This table with ``key`` added (or replacing the key of that name)."""
        kept = tuple(k for k in self.keys if k.name != key.name)
        return attrs.evolve(self, keys=(*kept, key))


Node = Fields | Component | Array | Keyed | Strings | Table


def _split(values: dict[str, Any], key: str | int) -> SplitConfig:
    loader, loader_component = values["loader"] or (LoaderConfig(), None)
    return SplitConfig(
        str(key),
        values["dataset"],
        loader,
        values["sampler"],
        values["collate"],
        tuple(values["transforms"] or ()),
        loader_component,
    )


SPLIT = Table(
    (
        Key(
            "dataset",
            Component("dataset"),
            "component table",
            "a registered dataset and its parameters (its split is one of them, usually split)",
            required="missing required key 'dataset' (a table with name = a registered dataset)",
        ),
        Key("loader", Fields(LoaderConfig, component="loader"), "table", "how to batch it; every key has a default"),
        Key("sampler", Component("sampler"), "component table", "a registered sampler replacing the default one"),
        Key("collate", Component("collate"), "component table", "a registered collate function"),
        Key("transforms", Array(Component("transform")), "array of component tables", "transforms, in order"),
    ),
    make=_split,
    name="split",
)
"""One data split: ``[data.train]``, ``[data.val.<key>]``, ``[data.test.<key>]``."""

DATA = Table(
    (
        Key(
            "train",
            SPLIT,
            "table [data.train]",
            "the training split",
            required="missing required table [data.train] (or a [datamodule])",
            unless="datamodule",
        ),
        Key("val", Keyed(SPLIT, noun="loaders"), "tables [data.val.<key>]", "validation splits by key"),
        Key("test", Keyed(SPLIT, noun="loaders"), "tables [data.test.<key>]", "test splits by key"),
    ),
    make=lambda values, _: values,
)


def _recipe(values: dict[str, Any], _: str | int) -> Recipe:
    data = values["data"] or {}
    return Recipe(
        path="",
        run=values["run"],
        model=values["model"],
        task=values["task"],
        optimizer=values["optimizer"],
        backend=values["backend"],
        resolved={},
        train=data.get("train"),
        val=data.get("val") or {},
        test=data.get("test") or {},
        scheduler=values["scheduler"],
        callbacks=tuple(values["callbacks"] or ()),
        loggers=tuple(values["loggers"] or ()),
        checkpoint=values["checkpoint"],
        datamodule=values["datamodule"],
        process=tuple(values["process"] or ()),
        plugins=tuple(values["plugins"] or ()),
        sections={k: v for k, v in values.items() if v is not None},
    )


RECIPE = Table(
    (
        Key(
            "plugins",
            Strings(),
            "array of strings",
            "local plugins to load for this recipe: module names, or .py files relative to the recipe file",
        ),
        Key(
            "run",
            Fields(RunConfig, one_of=("epochs", "max_steps")),
            "table [run]",
            "how long, where and how to train",
        ),
        Key("data", DATA, "tables [data.train], [data.val.<key>], [data.test.<key>]", "datasets and loaders"),
        Key(
            "datamodule",
            Component("datamodule"),
            "component table [datamodule]",
            "a registered datamodule that builds some or all loaders in code",
        ),
        Key(
            "model",
            Component("model"),
            "component table [model]",
            "a registered model",
            required="missing required table [model] with name = a registered model",
        ),
        Key(
            "task",
            Component("task"),
            "component table [task]",
            "a registered task: the train/val/test step logic",
            required="missing required table [task] with name = a registered task",
        ),
        Key(
            "optimizer",
            Component("optimizer"),
            "component table [optimizer]",
            "a registered optimizer; without it the task or model provides optimizers",
        ),
        Key(
            "scheduler",
            Component("scheduler"),
            "component table [scheduler]",
            "a registered learning-rate scheduler, stepped once per optimizer step",
            needs="optimizer",
            needs_why="schedule",
        ),
        Key(
            "backend",
            Component("backend", chosen_by=("run", "backend")),
            "table [backend]",
            "parameters of the backend chosen by [run] backend",
        ),
        Key(
            "checkpoint",
            Component("checkpointer"),
            "component table [checkpoint]",
            "a registered checkpointer; needed by runner run --resume",
        ),
        Key("callbacks", Array(Component("callback")), "array of component tables [[callbacks]]", "callbacks"),
        Key("loggers", Array(Component("logger")), "array of component tables [[loggers]]", "experiment loggers"),
        Key(
            "process",
            Array(Component("processor", framework=ProcessConfig, refs=(("executor", "executor"),))),
            "array of component tables [[process]]",
            "data processing steps run before training, through a cache",
        ),
        Key(
            "sweep",
            Component("sweeper", framework=SweepConfig, default_name="grid"),
            "component table [sweep]",
            "what runner sweep varies and how it searches (runner run ignores it)",
        ),
    ),
    make=_recipe,
)
"""The whole recipe, in the order ``runner recipe show`` writes it."""

#: Keys read before anything else, by composition (:mod:`runner._recipe.compose`): never validated as sections.
COMPOSITION_KEYS = ("extends", "defaults")


def _processing(values: dict[str, Any], _: str | int) -> ProcessingRecipe:
    return ProcessingRecipe(
        path="",
        resolved={},
        process=tuple(values["process"] or ()),
        plugins=tuple(values["plugins"] or ()),
        sections={k: v for k, v in values.items() if v is not None},
    )


_PROCESS_KEY = RECIPE.key("process")
_PLUGINS_KEY = RECIPE.key("plugins")
assert _PROCESS_KEY is not None and _PLUGINS_KEY is not None

PROCESSING = Table(
    (
        _PLUGINS_KEY,
        attrs.evolve(_PROCESS_KEY, required="missing [[process]] steps: a processing-only recipe holds them alone"),
    ),
    make=_processing,
)
"""The processing-only form of a recipe: ``[[process]]`` steps and the ``plugins`` they need,
nothing else. ``runner process``, ``runner recipe check`` and ``runner recipe show`` take it
(training needs the whole :data:`RECIPE`); :func:`form_of` tells which form a tree has."""


def form_of(tree: Any) -> Table:
    """:data:`PROCESSING` for a recipe tree holding ``[[process]]`` steps and no other key
    but ``plugins`` (and the composition keys), :data:`RECIPE` otherwise."""
    if not isinstance(tree, dict) or "process" not in tree:
        return RECIPE
    allowed = {key.name for key in PROCESSING.keys} | set(COMPOSITION_KEYS)
    return PROCESSING if set(tree) <= allowed else RECIPE


def node_at(path: KeyPath, root: Node | None = None) -> Node | None:
    """The grammar node describing the value at ``path`` of a recipe tree (None: a
    component's parameter, or no such key)."""
    node: Node | None = RECIPE if root is None else root
    for part in path:
        if isinstance(node, Table) and isinstance(part, str):
            key = node.key(part)
            node = key.node if key is not None else None
        elif (isinstance(node, Keyed) and isinstance(part, str)) or (isinstance(node, Array) and isinstance(part, int)):
            node = node.item
        elif isinstance(node, Fields) and isinstance(part, str):
            return None
        else:
            return None
    return node


def walk(tree: Any, node: Node | None = None, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Node, Any]]:
    """Every node instance in a (raw or resolved) recipe tree: ``(path, node, value)``,
    parents before children. Values of the wrong shape are skipped, not reported."""
    node = RECIPE if node is None else node
    yield path, node, tree
    if isinstance(node, Table) and isinstance(tree, dict):
        for key in node.keys:
            if key.name in tree:
                yield from walk(tree[key.name], key.node, (*path, key.name))
    elif isinstance(node, Keyed) and isinstance(tree, dict):
        for name, item in tree.items():
            yield from walk(item, node.item, (*path, name))
    elif isinstance(node, Array) and isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from walk(item, node.item, (*path, index))


def fields_sections(node: Node | None = None, path: KeyPath = ()) -> Iterator[tuple[KeyPath, type, str]]:
    """Every attrs class of core keys in the grammar: ``(path, class, what)``; keyed and
    array items show as ``<key>`` and ``<n>`` (for the generated reference)."""
    node = RECIPE if node is None else node
    if isinstance(node, Fields):
        yield path, node.cls, "table"
    elif isinstance(node, Component) and node.framework is not None:
        yield path, node.framework, f"framework keys next to the {node.kind}'s parameters"
    elif isinstance(node, Table):
        for key in node.keys:
            yield from fields_sections(key.node, (*path, key.name))
    elif isinstance(node, Keyed):
        yield from fields_sections(node.item, (*path, "<key>"))
    elif isinstance(node, Array):
        yield from fields_sections(node.item, (*path, "<n>"))


def component_slots(node: Node | None = None, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Component, bool]]:
    """Every place a component goes: ``(path, node, in an array)`` (for docs and completion)."""
    node = RECIPE if node is None else node
    if isinstance(node, Component):
        yield path, node, False
        for ref, kind in node.refs:
            yield (*path, ref), Component(kind), False
    elif isinstance(node, Fields) and node.component is not None:
        yield path, Component(node.component), False
    elif isinstance(node, Table):
        for key in node.keys:
            yield from component_slots(key.node, (*path, key.name))
    elif isinstance(node, Keyed):
        yield from component_slots(node.item, (*path, "<key>"))
    elif isinstance(node, Array):
        for sub, item, _ in component_slots(node.item, (*path, "<n>")):
            yield sub, item, True


__all__ = [
    "COMPOSITION_KEYS",
    "DATA",
    "PROCESSING",
    "RECIPE",
    "SPLIT",
    "Array",
    "Component",
    "ComponentConfig",
    "Fields",
    "Key",
    "KeyPath",
    "Keyed",
    "Node",
    "Strings",
    "Table",
    "component_slots",
    "fields_sections",
    "form_of",
    "node_at",
    "walk",
]
