"""Shell completion beyond click's commands and options: recipe files and ``-o`` key paths.

Enable it with click's completion, e.g. for bash::

    eval "$(_RUNNER_COMPLETE=bash_source runner)"

``-o`` completes the key paths a recipe accepts: with a recipe already on the command
line, the parameters of the components it names (``model.hidden`` for an ``mlp``);
without one, every key path of the recipe schema. After ``=`` it offers the allowed
values of keys with a fixed set (``run.precision=bf16``, booleans). Nothing here
imports torch.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem


def complete_recipe(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Directories and ``.toml`` files starting with ``incomplete``."""
    directory, _, prefix = incomplete.rpartition("/")
    from pathlib import Path

    base = Path(directory or ".")
    if directory == "" and incomplete.startswith("/"):
        base = Path("/")
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return []
    items = []
    for entry in entries:
        if not entry.name.startswith(prefix) or (entry.name.startswith(".") and not prefix.startswith(".")):
            continue
        shown = f"{directory}/{entry.name}" if directory or incomplete.startswith("/") else entry.name
        if entry.is_dir():
            items.append(CompletionItem(shown + "/", type="plain"))
        elif entry.name.endswith(".toml"):
            items.append(CompletionItem(shown))
    return items


def _describe(schema: dict[str, Any]) -> str:
    text = str(schema.get("description", ""))
    return text.splitlines()[0][:80] if text else ""


def _recipe_keys(recipe: dict[str, Any], registry: Any) -> list[tuple[str, dict[str, Any]]]:
    """Key paths of a parsed recipe, from the grammar: the core's keys, and the parameters
    of the components the recipe names, each with the schema of its value."""
    from runner._contract import grammar
    from runner._schema.export import field_schema, params_schema
    from runner._schema.fields import schema_from_attrs

    keys: list[tuple[str, dict[str, Any]]] = []

    def fields_of(prefix: str, params: Any) -> None:
        for name, schema in params_schema(params)["properties"].items():
            keys.append((f"{prefix}.{name}", schema))

    def named(prefix: str, kind: str, name: Any) -> None:
        found = registry.find(kind, name) if isinstance(name, str) else None
        if found is None:
            return
        try:
            fields_of(prefix, found.schema)
        except Exception:  # a broken component: complete the rest
            return

    def chosen_name(node: grammar.Component) -> Any:
        assert node.chosen_by is not None
        section, key = (str(part) for part in node.chosen_by)
        table = recipe.get(section)
        if isinstance(table, dict) and key in table:
            return table[key]
        chooser = grammar.node_at((section,))
        if isinstance(chooser, grammar.Fields):
            return schema_from_attrs(chooser.cls).fields[key].default
        return None

    def visit(node: grammar.Node, value: Any, prefix: str) -> None:
        table = value if isinstance(value, dict) else {}
        if isinstance(node, grammar.Table):
            for key in node.keys:
                visit(key.node, table.get(key.name), f"{prefix}.{key.name}" if prefix else key.name)
        elif isinstance(node, grammar.Fields):
            fields_of(prefix, schema_from_attrs(node.cls))
            if node.component is not None:
                keys.append((f"{prefix}.name", {"enum": registry.names(node.component)}))
                named(prefix, node.component, table.get("name"))
        elif isinstance(node, grammar.Component):
            if node.chosen_by is not None:
                named(prefix, node.kind, chosen_name(node))
                return
            names = registry.names(node.kind)
            keys.append((f"{prefix}.name", {"enum": names, "description": f"a registered {node.kind}"}))
            named(prefix, node.kind, table.get("name", node.default_name))
            if node.framework is not None:
                for field in schema_from_attrs(node.framework).fields.values():
                    keys.append((f"{prefix}.{field.name}", field_schema(field)))
        elif isinstance(node, grammar.Array) and isinstance(value, list):
            for index, item in enumerate(value):
                visit(node.item, item, f"{prefix}.{index}")
        elif isinstance(node, grammar.Keyed):
            for key, item in table.items():
                visit(node.item, item, f"{prefix}.{key}")
        elif isinstance(node, grammar.Strings):
            keys.append((prefix, {"type": "array"}))

    visit(grammar.RECIPE, recipe, "")
    return keys


def _recipe_on_command_line(ctx: click.Context) -> str | None:
    """The recipe file already typed. click loses a positional argument that precedes an
    option still waiting for its value (``run r.toml -o <TAB>``), so the words the shell
    passed (``COMP_WORDS``, set by click's bash, zsh and fish scripts) are searched too.
    """
    import shlex

    try:
        words = shlex.split(os.environ.get("COMP_WORDS", ""))
    except ValueError:
        words = os.environ.get("COMP_WORDS", "").split()
    for word in [ctx.params.get("recipe"), *ctx.args, *words[1:]]:
        if isinstance(word, str) and word.endswith(".toml") and os.path.isfile(word):
            return word
    return None


def override_keys(ctx: click.Context) -> list[tuple[str, dict[str, Any]]]:
    """Key paths ``-o`` can set here: from the recipe on the command line, else from the schema."""
    from runner._cli.state import AppState

    registry = AppState.of(ctx).plugins.registry
    recipe = _recipe_on_command_line(ctx)
    if recipe is not None:
        from runner._contract.errors import RunnerError
        from runner._recipe.source import parse_toml

        try:
            with open(recipe, encoding="utf-8") as handle:
                data = parse_toml(handle.read(), recipe)
        except (OSError, UnicodeDecodeError, RunnerError):
            data = None
        if data is not None:
            return _recipe_keys(data, registry)
    from runner._schema.export import key_paths, recipe_schema

    return key_paths(recipe_schema(registry))


def _values(schema: dict[str, Any]) -> list[str]:
    if "enum" in schema:
        return [v if isinstance(v, str) else str(v).lower() for v in schema["enum"]]
    if schema.get("type") == "boolean":
        return ["true", "false"]
    return []


def complete_override(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Complete ``-o KEY.PATH=VALUE``: key paths, then the allowed values of the key."""
    try:
        keys = override_keys(ctx)
    except Exception:  # completion must never print a traceback into the shell
        return []
    if "=" in incomplete:
        key, _, value = incomplete.partition("=")
        for path, schema in keys:
            if path == key:
                return [CompletionItem(f"{key}={v}") for v in _values(schema) if v.startswith(value)]
        return []
    return [
        CompletionItem(path, help=_describe(schema))
        for path, schema in keys
        if path.startswith(incomplete) and not path.endswith(".")
    ]
