"""JSON Schema (draft 2020-12) of recipes, for editors (taplo / Even Better TOML) and docs.

The schema is derived from what validation interprets: the recipe grammar
(:mod:`runner._contract.grammar`, with its attrs sections such as
:class:`~runner._contract.recipe.RunConfig`) and every registered component's parameter schema.
A component table is an object whose ``name`` is one of the registered names of its
kind; an ``if``/``then`` per name adds that component's parameters (types, defaults,
docs) and rejects unknown keys. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import json
import pathlib
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import attrs

from runner._contract import grammar
from runner._contract.params import REQUIRED, Check, recipe_key
from runner._plugins.registry import Component, Registry
from runner._schema.fields import Field, ParamSchema, schema_from_attrs

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://runner.invalid/recipe.schema.json"

JSON = dict[str, Any]


def json_value(value: Any) -> Any:
    """``value`` as JSON data, or raise ``TypeError`` when it has no JSON form."""
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if attrs.has(type(value)):
        return {recipe_key(f): json_value(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        json.dumps(value)  # rejects nan/inf only with allow_nan=False; fine for editors
        return value
    raise TypeError(f"no JSON form for {type(value).__name__}")


def type_schema(tp: Any) -> JSON:
    """JSON Schema of a Python type hint, following :func:`runner._schema.check.check`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return {}
    if origin is typing.Annotated:
        return type_schema(args[0])
    if origin in (typing.Union, types.UnionType):
        options = [type_schema(a) for a in args if a is not type(None)]
        options = [o for i, o in enumerate(options) if o not in options[:i]]
        if any(o == {} for o in options):
            return {}
        return options[0] if len(options) == 1 else {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple) or origin in _SEQUENCES:
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return {
                "type": "array",
                "prefixItems": [type_schema(a) for a in args],
                "minItems": len(args),
                "maxItems": len(args),
            }
        item = type_schema(args[0]) if args else {}
        return {"type": "array", "items": item} if item else {"type": "array"}
    if origin is dict or origin in _MAPPINGS:
        value = type_schema(args[1]) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value} if value else {"type": "object"}
    if isinstance(tp, type):
        if attrs.has(tp):
            return params_schema(schema_from_attrs(tp), title=tp.__name__, doc=tp.__doc__ or "")
        if issubclass(tp, enum.Enum):
            values: list[Any] = []
            for member in tp:
                for v in (member.value, member.name):
                    if v not in values:
                        values.append(v)
            return {"enum": values}
        simple = {bool: "boolean", int: "integer", float: "number", str: "string", pathlib.Path: "string"}
        for py, name in simple.items():
            if tp is py:
                return {"type": name}
        if issubclass(tp, (list, tuple)):
            return {"type": "array"}
        if issubclass(tp, dict):
            return {"type": "object"}
    return {}


_SEQUENCES = {typing.get_origin(typing.Sequence[int]), typing.get_origin(typing.List[int])}  # noqa: UP006
_MAPPINGS = {typing.get_origin(typing.Mapping[str, int]), typing.get_origin(typing.Dict[str, int])}  # noqa: UP006


def check_schema(check: Check | None) -> JSON:
    """Keywords for the constraints of :mod:`runner._schema.fields` (``at_least``, ``one_of_patterns``)."""
    if check is None:
        return {}
    qualname = getattr(check, "__qualname__", "")
    try:
        bound = inspect.getclosurevars(check).nonlocals
    except (TypeError, ValueError):
        return {}
    if qualname.startswith("at_least.") and isinstance(bound.get("minimum"), (int, float)):
        return {"minimum": bound["minimum"]}
    if qualname.startswith("one_of_patterns.") and isinstance(bound.get("patterns"), tuple):
        return {"pattern": "^(?:" + "|".join(f"(?:{p})" for p in bound["patterns"]) + ")$"}
    return {}


def field_schema(field: Field) -> JSON:
    """Schema of one parameter: its type, constraint, default and doc."""
    schema = dict(type_schema(field.type))
    constraint = check_schema(field.check)
    if constraint:
        if "anyOf" in schema:  # Optional[int] with at_least: constrain the numeric option
            schema = {"allOf": [schema, constraint]}
        else:
            schema.update(constraint)
    from runner._schema.check import describe

    text = field.doc.strip()
    kind = describe(field.type)
    schema["description"] = f"{text} ({kind})" if text else kind
    if not field.required and field.default is not None:
        with contextlib.suppress(TypeError):
            schema["default"] = json_value(field.default)
    return schema


def params_schema(params: ParamSchema, *, title: str = "", doc: str = "", extra: dict[str, JSON] | None = None) -> JSON:
    """An object schema for a parameter table; unknown keys are rejected unless ``open``."""
    properties: dict[str, JSON] = dict(extra or {})
    properties.update({name: field_schema(f) for name, f in params.fields.items()})
    schema: JSON = {"type": "object"}
    if title:
        schema["title"] = title
    if doc.strip():
        schema["description"] = inspect.cleandoc(doc)
    schema["properties"] = properties
    required = [name for name, f in params.fields.items() if f.required]
    if required:
        schema["required"] = required
    if not params.open:
        schema["additionalProperties"] = False
    return schema


def _component_params(component: Component) -> ParamSchema:
    try:
        return component.schema
    except Exception:  # a broken component: accept anything rather than fail the export
        return ParamSchema({}, open=True)


def _component_doc(component: Component) -> str:
    """The component's doc, else its parameter class's docstring; ``""`` when the lazy
    parameter class cannot be imported (the export must not fail on a broken plugin)."""
    if component.doc:
        return component.doc
    try:
        params_class = component.params_class
    except Exception:
        return ""
    return (params_class.__doc__ if params_class is not None else "") or ""


def component_table(
    registry: Registry,
    kind: str,
    *,
    framework: Iterable[Field] = (),
    description: str = "",
    name_required: bool = True,
) -> JSON:
    """A ``{name = ..., params...}`` table of ``kind``: name enum plus if/then per component."""
    names = registry.names(kind)
    name_schema: JSON = {
        "description": f"A registered {kind}: {', '.join(names) or 'none installed'}.",
        "type": "string",
    }
    if names:
        name_schema["enum"] = names
    extra = {f.name: field_schema(f) for f in framework}
    branches = []
    for name in names:
        component = registry.get(kind, name)
        then = params_schema(
            _component_params(component),
            title=f"{kind} {name}",
            doc=_component_doc(component),
            extra={"name": {"const": name}, **extra},
        )
        then["description"] = f"{then.get('description', '')} (plugin {component.plugin})".strip()
        branches.append({"if": {"properties": {"name": {"const": name}}, "required": ["name"]}, "then": then})
    schema: JSON = {
        "type": "object",
        "description": description or f"A {kind} table: name = a registered {kind}, plus its parameters.",
        "properties": {"name": name_schema, **extra},
    }
    if name_required:
        schema["required"] = ["name"]
    if branches:
        schema["allOf"] = branches
    return schema


def _node_schema(node: grammar.Node, registry: Registry, defs: dict[str, JSON], path: grammar.KeyPath) -> JSON:
    """The schema of one grammar node (shared tables and component kinds go to ``$defs``)."""
    if isinstance(node, grammar.Table):
        properties: dict[str, JSON] = {}
        for key in node.keys:
            sub = dict(_node_schema(key.node, registry, defs, (*path, key.name)))
            sub.setdefault("description", key.doc)  # 2020-12 allows keywords next to $ref
            properties[key.name] = sub
        schema: JSON = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [key.name for key in node.keys if key.required and key.unless is None]
        if required:
            schema["required"] = required
        if node.name:
            defs[node.name] = schema
            return {"$ref": f"#/$defs/{node.name}"}
        return schema
    if isinstance(node, grammar.Fields):
        schema = params_schema(schema_from_attrs(node.cls), title=str(path[-1]), doc=node.cls.__doc__ or "")
        if node.component is not None:
            names = registry.names(node.component)
            schema["properties"]["name"] = {"type": "string", "description": f"A registered {node.component}."}
            if names:
                schema["properties"]["name"]["enum"] = names
                schema.pop("additionalProperties", None)  # a named one adds its own parameters
        return schema
    if isinstance(node, grammar.Component):
        if node.chosen_by is not None:
            return {"type": "object"}  # its parameters depend on the chosen name: see _chosen_branches
        if node.framework is None:
            defs.setdefault(node.kind, component_table(registry, node.kind))
            return {"$ref": f"#/$defs/{node.kind}"}
        name = str(next(part for part in reversed(path) if isinstance(part, str) and not part.startswith("<")))
        defs[name] = component_table(
            registry,
            node.kind,
            framework=list(schema_from_attrs(node.framework).fields.values()),
            description=f"[{name}]: name = a registered {node.kind}, the keys every {node.kind} reads, its parameters.",
            name_required=node.default_name is None,
        )
        return {"$ref": f"#/$defs/{name}"}
    if isinstance(node, grammar.Array):
        return {"type": "array", "items": _node_schema(node.item, registry, defs, (*path, "<n>"))}
    if isinstance(node, grammar.Keyed):
        item = _node_schema(node.item, registry, defs, (*path, "<key>"))
        return {"type": "object", "additionalProperties": item, KEYED: node.example}
    return {"type": "array", "items": {"type": "string"}}


#: Marks a table of named items in the schema (an annotation: validators ignore it), for key_paths.
KEYED = "x-runner-keyed"


def _chosen_branches(registry: Registry, root: JSON) -> list[JSON]:
    """``if [run] backend = NAME then [backend] holds NAME's parameters``, for every chosen component."""
    branches: list[JSON] = []
    for path, node, _ in grammar.component_slots():
        if node.chosen_by is None or len(node.chosen_by) != 2 or len(path) != 1:
            continue
        section, key = (str(part) for part in node.chosen_by)
        chooser = root["properties"][section]["properties"][key]
        names = registry.names(node.kind)
        default = chooser.get("default")
        chooser["enum"] = names or ([default] if default is not None else [])
        for name in names:
            chosen: JSON = {"properties": {section: {"properties": {key: {"const": name}}, "required": [key]}}}
            if name == default:  # also when the key (or its table) is left out
                chosen = {
                    "anyOf": [
                        chosen | {"required": [section]},
                        {"not": {"required": [section]}},
                        {"properties": {section: {"not": {"required": [key]}}}},
                    ]
                }
            else:
                chosen["required"] = [section]
            component = registry.get(node.kind, name)
            params = params_schema(_component_params(component), title=f"{node.kind} {name}", doc=component.summary)
            branches.append({"if": chosen, "then": {"properties": {str(path[0]): params}}})
    return branches


def recipe_schema(registry: Registry) -> JSON:
    """The JSON Schema of a recipe with every component ``registry`` knows, from the grammar."""
    defs: dict[str, JSON] = {}
    root = _node_schema(grammar.RECIPE, registry, defs, ())
    branches = _chosen_branches(registry, root)
    schema: JSON = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "runner recipe",
        "description": "A runner training recipe (TOML). Generated by `runner recipe schema`.",
        **root,
        "$defs": defs,
    }
    for key in grammar.COMPOSITION_KEYS:  # read before validation (composition)
        schema["properties"][key] = {"description": COMPOSITION_DOCS[key]}
    required = schema.pop("required", None)
    if required:  # a training recipe, or the processing-only form ([[process]] steps alone)
        alone = [key.name for key in grammar.PROCESSING.keys] + list(grammar.COMPOSITION_KEYS)
        schema["anyOf"] = [{"required": required}, {"required": ["process"], "propertyNames": {"enum": alone}}]
    if branches:
        schema["allOf"] = branches
    return schema


COMPOSITION_DOCS = {
    "extends": "Recipe file(s) this one extends, relative to it: a string or an array of strings.",
    "defaults": 'Component groups merged in, e.g. ["model/mlp"] reads model/mlp.toml into [model].',
}


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_paths(schema: JSON, limit: int = 2000) -> list[tuple[str, JSON]]:
    """Dotted key paths a recipe can set (``run.epochs``, ``model.hidden``...) with their schemas.

    Keyed tables and arrays are shown with placeholders: ``data.val.main``, ``callbacks.0``.
    """
    defs: dict[str, JSON] = schema.get("$defs", {})
    out: list[tuple[str, JSON]] = []

    def deref(node: JSON) -> JSON:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def walk(prefix: str, node: JSON, depth: int) -> None:
        if len(out) >= limit or depth > 6:
            return
        node = deref(node)
        props: dict[str, JSON] = dict(node.get("properties", {}))
        for branch in node.get("allOf", []):
            props.update(branch.get("then", {}).get("properties", {}))
        for key, sub in props.items():
            sub = deref(sub)
            path = f"{prefix}.{key}" if prefix else key
            out.append((path, sub))
            if sub.get("type") == "object" or "properties" in sub or "allOf" in sub:
                walk(path, sub, depth + 1)
            elif sub.get("type") == "array" and isinstance(sub.get("items"), dict):
                walk(f"{path}.0", sub["items"], depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra and KEYED in node:
            walk(f"{prefix}.{node[KEYED]}", extra, depth + 1)

    walk("", schema, 0)
    seen: set[str] = set()
    unique = []
    for path, sub in out:
        if path not in seen:
            seen.add(path)
            unique.append((path, sub))
    return unique


__all__ = ["REQUIRED", "component_table", "key_paths", "recipe_schema", "type_schema"]
