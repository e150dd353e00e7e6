"""Validate a parsed recipe against the grammar and the registered components.

The structure comes from :mod:`runner._contract.grammar` alone: this module interprets
its nodes. One pass gives the typed :class:`~runner._contract.recipe.Recipe` and its
resolved tree (every default written out). Everything is checked before anything runs,
and every problem is reported at once, each with file:line:column, key path, what was
expected and what was found, sorted by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, overload

import attrs

from runner._contract import grammar
from runner._contract.errors import PluginError, Problem, RecipeError
from runner._contract.grammar import Array, Component, Fields, Keyed, Node, Strings, Table
from runner._contract.recipe import ComponentConfig, ProcessingRecipe, Recipe
from runner._contract.suggest import close_matches, did_you_mean
from runner._plugins.catalog import KNOWN, install_hint
from runner._plugins.registry import Registry
from runner._recipe.locate import KeyPath
from runner._recipe.paths import resolve_paths
from runner._recipe.source import COMMAND_LINE, RecipeSource, format_path
from runner._schema.check import Issue, check_table, describe, found
from runner._schema.fields import Field, schema_from_attrs

#: ``(typed value, resolved tree)`` of a node, or None when it is missing or invalid.
Result = tuple[Any, Any] | None


class _Validator:
    def __init__(self, source: RecipeSource, registry: Registry, failures: Sequence[object]) -> None:
        self.source = source
        self.registry = registry
        self.failures = failures
        self.problems: list[Problem] = list(source.problems)  # overrides that could not be applied
        self.sections: dict[str, Any] = {}  # typed top-level values so far (a chosen component's name)

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def unknown_keys(self, base: KeyPath, table: dict[str, Any], accepted: Sequence[str]) -> None:
        for key in table:
            if key not in accepted:
                hint = did_you_mean(key, accepted)
                self.problem(
                    (*base, key), f"unknown key ({hint})" if hint else f"unknown key; accepted: {', '.join(accepted)}"
                )

    def issues(self, base: KeyPath, issues: list[Issue], note: str = "") -> None:
        for path, message in issues:
            self.problem((*base, *path), message + note)

    def as_table(self, path: KeyPath, value: Any) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(path, f"expected table, found {found(value)}")
        return None

    # -- nodes ---------------------------------------------------------------------------

    def node(self, node: Node, path: KeyPath, value: Any) -> Result:
        if isinstance(node, Table):
            return self.table(node, path, value)
        if isinstance(node, Fields):
            return self.fields(node, path, value)
        if isinstance(node, Component):
            return self.component_node(node, path, value)
        if isinstance(node, Array):
            return self.array(node, path, value)
        if isinstance(node, Keyed):
            return self.keyed(node, path, value)
        return self.strings(node, path, value)

    def table(self, node: Table, path: KeyPath, value: Any) -> Result:
        table = self.as_table(path, value)
        if table is None:
            return None
        self.unknown_keys(path, table, [key.name for key in node.keys])
        typed: dict[str, Any] = {}
        resolved: dict[str, Any] = {}
        complete = True
        for key in node.keys:
            where = (*path, key.name)
            present = key.name in table
            if not present and key.required and not (key.unless and key.unless in self.source.data):
                self.problem(path if path else where, key.required)
                complete = False
            if present and key.needs and key.needs not in self.source.data:
                self.problem(where, f"a [{key.name}] needs an [{key.needs}] table to {key.needs_why}")
            # Tables and core keys are walked even when left out: their own keys have defaults or requirements.
            implied = (
                isinstance(key.node, Fields)
                or (isinstance(key.node, Table) and not key.required)
                or (isinstance(key.node, Component) and key.node.chosen_by is not None)
            )
            result = self.node(key.node, where, table.get(key.name, {})) if present or implied else None
            typed[key.field] = None if result is None else result[0]
            if result is not None and (present or result[1] or not isinstance(key.node, Table)):
                resolved[key.name] = result[1]
            if result is None and key.required:
                complete = False
            if not path:
                self.sections[key.name] = typed[key.field]
        if not complete or node.make is None:
            return (typed if node.make is None else None), resolved
        return node.make(typed, path[-1] if path else ""), resolved

    def fields(self, node: Fields, path: KeyPath, value: Any) -> Result:
        table = self.as_table(path, value)
        if table is None:
            return (node.cls(), None) if node.component else node.cls(), {}
        schema = schema_from_attrs(node.cls).fields
        component: ComponentConfig | None = None
        if node.component is not None and "name" in table:
            # A named component: the standard keys configure the class, the rest are its own.
            own = {k: v for k, v in table.items() if k not in schema}
            component = self.component(node.component, path, own)
            table = {k: v for k, v in table.items() if k in schema}
        converted, issues = check_table(table, schema)
        self.issues(path, issues)
        bad = {issue_path[0] for issue_path, _ in issues if issue_path}
        valid = {key: value for key, value in converted.items() if key not in bad}
        resolve_paths(self, path, valid, schema, set(table))
        typed = node.cls(**valid)
        if node.one_of and all(getattr(typed, k) is None for k in node.one_of) and not set(node.one_of) & set(table):
            keys = " or ".join(format_path((*path, k)) for k in node.one_of)
            self.problem(path, f"set {keys} (expected {describe(schema[node.one_of[0]].type)})")
        resolved = attrs.asdict(typed)
        if component is not None:
            resolved = {**component.table(), **resolved}
        return ((typed, component) if node.component else typed), resolved

    def component_node(self, node: Component, path: KeyPath, value: Any) -> Result:
        if node.chosen_by is not None:
            return self.chosen(node, path, value)
        table = self.as_table(path, value)
        if table is None:
            return None
        table = dict(table)
        if node.default_name is not None and "name" not in table:
            table["name"] = node.default_name
        framework: dict[str, Any] = {}
        if node.framework is not None:
            keys = node.framework_keys
            written = {k: v for k, v in table.items() if k in keys}
            table = {k: v for k, v in table.items() if k not in keys}
            result = self.fields(Fields(node.framework), path, written)
            framework = result[1] if result is not None else {}
            for key, kind in node.refs:
                framework[key] = self.reference(kind, (*path, key), framework[key])
        config = self.component(node.kind, path, table)
        if config is None:
            return None
        if framework:
            config = attrs.evolve(config, framework=framework)
        return config, config.table()

    def chosen(self, node: Component, path: KeyPath, value: Any) -> Result:
        """A component whose name is written elsewhere (``[backend]`` for ``[run] backend``)."""
        assert node.chosen_by is not None
        table = self.as_table(path, value)
        if table is None:
            return None
        section, key = node.chosen_by[0], node.chosen_by[-1]
        if "name" in table:
            self.problem(
                (*path, "name"),
                f"choose the {node.kind} with [{section}] {key} = NAME; [{format_path(path)}] holds its parameters",
            )
            table = {k: v for k, v in table.items() if k != "name"}
        name = getattr(self.sections.get(str(section)), str(key), None)
        if not isinstance(name, str):
            return None
        if self.registry.find(node.kind, name) is None:
            self.problem(node.chosen_by, self.unknown(node.kind, name))
            return None
        config = self.component(node.kind, path, table, name=name)
        return None if config is None else (config, dict(config.params))

    def array(self, node: Array, path: KeyPath, value: Any) -> Result:
        if not isinstance(value, list):
            self.problem(path, f"expected array of tables ([[{format_path(path)}]]), found {found(value)}")
            return None
        results = [self.node(node.item, (*path, index), item) for index, item in enumerate(value)]
        kept = [r for r in results if r is not None]
        return [r[0] for r in kept], [r[1] for r in kept]

    def keyed(self, node: Keyed, path: KeyPath, value: Any) -> Result:
        table = self.as_table(path, value)
        if table is None:
            return None
        item = node.item
        if isinstance(item, Table) and any(item.key(k) is not None for k in table):
            first = next((k.name for k in item.keys if k.required), item.keys[0].name)
            self.problem(
                path, f"expected {node.noun} by key, e.g. [{format_path(path)}.{node.example}] with {first} = ..."
            )
            return None
        results = {key: self.node(item, (*path, key), entry) for key, entry in table.items()}
        kept = {key: r for key, r in results.items() if r is not None}
        return {key: r[0] for key, r in kept.items()}, {key: r[1] for key, r in kept.items()}

    def strings(self, node: Strings, path: KeyPath, value: Any) -> Result:
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            self.problem(path, f"expected list of str, found {found(value)}")
            return None
        return list(value), list(value)

    # -- components ----------------------------------------------------------------------

    def component(self, kind: str, path: KeyPath, value: Any, *, name: str | None = None) -> ComponentConfig | None:
        """A ``{name = ..., params...}`` table (or a params table whose name comes from elsewhere)."""
        table = self.as_table(path, value)
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
        note = ""
        if component is None:
            self.unknown_component(kind, name, name_path, table)
            closest = close_matches(name, self.registry.names(kind), limit=1)
            if not closest or not table or self.registry.clash(kind, name):
                return None
            # Check the rest against the closest name, so fixing the name reveals nothing new.
            component, note = self.registry.get(kind, closest[0]), f" (checked against {kind} {closest[0]!r})"
        try:
            schema = component.schema
        except Exception as exc:
            self.problem(name_path, f"cannot read parameters of {kind} {name!r} ({component.plugin}): {exc}")
            return None
        params, issues = check_table(table, schema.fields, open_table=schema.open)
        self.issues(path, issues, note)
        invalid = {issue[0][0] for issue in issues if issue[0]}
        self.registered_names(path, params, schema.fields, invalid)
        resolve_paths(self, path, params, schema.fields, set(table) - invalid)
        try:  # the declaration's @runner.check rules, on the parameters that passed their own checks
            self.issues(path, component.check_params(params, invalid=invalid), note)
        except PluginError as exc:
            self.problem(name_path, str(exc))
        if note:
            return None
        return ComponentConfig(kind=kind, name=name, params=params, path=format_path(path))

    def unknown_component(self, kind: str, name: str, path: KeyPath, table: dict[str, Any]) -> None:
        message = self.unknown(kind, name)
        closest = close_matches(name, self.registry.names(kind), limit=1)
        if table and (not closest or self.registry.clash(kind, name)):
            shown = ", ".join(format_path((key,)) for key in list(table)[:6]) + (", ..." if len(table) > 6 else "")
            message += f"; its parameters ({shown}) are not checked"
        self.problem(path, message)

    def reference(self, kind: str, path: KeyPath, value: Any) -> Any:
        """A framework key naming a component: a registered name, or ``{ name = ..., parameters }``
        (resolved with defaults; a name stays a name when the component has no parameters)."""
        if isinstance(value, str):
            config = self.component(kind, path, {}, name=value)
        else:
            config = self.component(kind, path, value)
        if config is None:
            return value
        return {"name": config.name, **config.params} if config.params else config.name

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

    # -- rules across sections -----------------------------------------------------------

    def resumable_samplers(self, recipe: Recipe) -> None:
        """With checkpointing, a sampler must implement the state protocol (helios' TypeError)."""
        from runner._samplers.protocol import declared_resumable, non_resumable_message

        if recipe.checkpoint is None:
            return
        for split in [recipe.train, *recipe.val.values(), *recipe.test.values()]:
            sampler = split.sampler if split is not None else None
            component = self.registry.find("sampler", sampler.name) if sampler is not None else None
            if sampler is None or component is None or declared_resumable(component) is not False:
                continue
            self.problem((*sampler.path.split("."), "name"), non_resumable_message(sampler.name, component.plugin))

    def recipe(self, processing: bool = False) -> Recipe | ProcessingRecipe | None:
        form = grammar.form_of(self.source.data)
        if form is grammar.PROCESSING and processing:
            done = self.node(form, (), self.source.data)
            if done is None or not isinstance(done[0], ProcessingRecipe) or self.problems:
                return None
            return attrs.evolve(done[0], path=self.source.path, resolved=done[1])
        if form is grammar.PROCESSING:
            self.problem(
                (),
                "this recipe holds [[process]] steps alone: run them with `runner process`; "
                "training also needs [run], [data.train], [model] and [task]",
            )
        result = self.node(grammar.RECIPE, (), self.source.data)
        if result is None or not isinstance(result[0], Recipe):
            return None
        recipe: Recipe = result[0]
        self.resumable_samplers(recipe)
        if self.problems:
            return None
        return attrs.evolve(recipe, path=self.source.path, resolved=result[1])


def sort_key(root: str) -> Any:
    """Problems in reading order: the recipe file's first (missing tables, without a line,
    at its top), then included files, then the command line; by line, then column."""

    def key(problem: Problem) -> tuple[Any, ...]:
        if problem.file.startswith(COMMAND_LINE):
            return (True, problem.path)  # no lines: by key path (overrides that did not apply first)
        return (False, problem.file != root, problem.file, problem.line or 0, problem.column or 0, problem.path)

    return key


@overload
def validate(
    source: RecipeSource, registry: Registry, failures: Sequence[object] = (), *, processing: Literal[False] = False
) -> Recipe: ...


@overload
def validate(
    source: RecipeSource, registry: Registry, failures: Sequence[object] = (), *, processing: bool
) -> Recipe | ProcessingRecipe: ...


def validate(
    source: RecipeSource, registry: Registry, failures: Sequence[object] = (), *, processing: bool = False
) -> Recipe | ProcessingRecipe:
    """Validate ``source``; raise :class:`RecipeError` listing every problem.

    ``processing=True`` also accepts the processing-only form (``grammar.PROCESSING``:
    ``[[process]]`` steps alone), returned as a :class:`ProcessingRecipe`; otherwise such a
    recipe is reported as missing what training needs.
    """
    validator = _Validator(source, registry, failures)
    recipe = validator.recipe(processing)
    if recipe is None or validator.problems:
        problems = list(dict.fromkeys(validator.problems))  # a rule and a node may find the same thing
        raise RecipeError(sorted(problems, key=sort_key(source.path)))
    return recipe


__all__ = ["describe", "sort_key", "validate"]
