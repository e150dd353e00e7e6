"""JSON Schema (draft 2020-12) of recipes, for editors (taplo / Even Better TOML) and docs.

The schema is built from the same sources validation uses: the core's attrs sections
(:class:`~runner._contract.recipe.RunConfig`, :class:`~runner._contract.recipe.LoaderConfig`,
:class:`~runner._contract.recipe.ProcessConfig`), the top-level keys of
:mod:`runner._recipe.validate`, and every registered component's parameter schema.
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

from runner._contract.params import REQUIRED, Check
from runner._contract.recipe_keys import COMPONENT_ARRAYS, COMPONENT_TABLES
from runner._plugins.registry import Component, Registry
from runner._schema.fields import Field, ParamSchema, schema_from_attrs

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "https://runner.invalid/recipe.schema.json"

JSON = dict[str, Any]

SINGLE_TABLES: dict[str, str] = COMPONENT_TABLES
#: Arrays of plain component tables (``[[process]]`` steps also carry framework keys: see below).
ARRAY_TABLES: dict[str, str] = {k: v for k, v in COMPONENT_ARRAYS.items() if k != "process"}


def json_value(value: Any) -> Any:
    """``value`` as JSON data, or raise ``TypeError`` when it has no JSON form."""
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if attrs.has(type(value)):
        return {f.alias or f.name: json_value(getattr(value, f.name)) for f in attrs.fields(type(value))}
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


def component_table(registry: Registry, kind: str, *, framework: Iterable[Field] = (), description: str = "") -> JSON:
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
        "required": ["name"],
    }
    if branches:
        schema["allOf"] = branches
    return schema


def recipe_schema(registry: Registry) -> JSON:
    """The JSON Schema of a recipe with every component ``registry`` knows."""
    from runner._contract.recipe import LoaderConfig, ProcessConfig, RunConfig
    from runner._recipe.validate import SPLIT_KEYS, TOP_LEVEL

    defs: dict[str, JSON] = {}
    for kind in ("dataset", "sampler", "collate", "transform", *SINGLE_TABLES.values(), *ARRAY_TABLES.values()):
        defs[kind] = component_table(registry, kind)
    process_fields = list(schema_from_attrs(ProcessConfig).fields.values())
    defs["process"] = component_table(
        registry,
        "processor",
        framework=process_fields,
        description="A [[process]] step: name = a registered processor, the framework keys and its parameters.",
    )
    defs["loader"] = params_schema(
        schema_from_attrs(LoaderConfig), title="loader", doc="Loader settings (batch size, workers, shuffling)."
    )
    split_properties: dict[str, JSON] = {
        "dataset": {"$ref": "#/$defs/dataset"},
        "loader": {"$ref": "#/$defs/loader"},
        "sampler": {"$ref": "#/$defs/sampler"},
        "collate": {"$ref": "#/$defs/collate"},
        "transforms": {"type": "array", "items": {"$ref": "#/$defs/transform"}},
    }
    assert set(split_properties) == set(SPLIT_KEYS)
    defs["split"] = {
        "type": "object",
        "description": "One data loader: dataset, loader settings and optional sampler, collate and transforms.",
        "properties": split_properties,
        "required": ["dataset"],
        "additionalProperties": False,
    }
    keyed = {
        "type": "object",
        "description": "Loaders by key, e.g. [data.val.main].",
        "additionalProperties": {"$ref": "#/$defs/split"},
    }
    run = params_schema(schema_from_attrs(RunConfig), title="run", doc=RunConfig.__doc__ or "")
    backends = registry.names("backend")
    run["properties"]["backend"]["enum"] = backends or ["single"]

    properties: dict[str, JSON] = {
        "plugins": {"type": "array", "items": {"type": "string"}},
        "run": run,
        "data": {
            "type": "object",
            "properties": {
                "train": {"$ref": "#/$defs/split"},
                "val": keyed,
                "test": keyed,
            },
            "additionalProperties": False,
        },
        "backend": {"type": "object", "description": "Parameters of the backend chosen by [run] backend."},
        "process": {"type": "array", "items": {"$ref": "#/$defs/process"}},
    }
    for key, kind in SINGLE_TABLES.items():
        properties[key] = {"$ref": f"#/$defs/{kind}"}
    for key, kind in ARRAY_TABLES.items():
        properties[key] = {"type": "array", "items": {"$ref": f"#/$defs/{kind}"}}
    assert set(properties) == set(TOP_LEVEL), sorted(set(properties) ^ set(TOP_LEVEL))
    for key, text in TOP_LEVEL.items():
        properties[key].setdefault("description", text)

    default_backend = RunConfig().backend
    branches = []
    for name in backends:
        chosen: JSON = {"properties": {"run": {"properties": {"backend": {"const": name}}, "required": ["backend"]}}}
        if name == default_backend:  # also when run.backend is left out
            chosen = {
                "anyOf": [
                    chosen | {"required": ["run"]},
                    {"not": {"required": ["run"]}},
                    {"properties": {"run": {"not": {"required": ["backend"]}}}},
                ]
            }
        else:
            chosen["required"] = ["run"]
        component = registry.get("backend", name)
        branches.append(
            {
                "if": chosen,
                "then": {
                    "properties": {
                        "backend": params_schema(
                            _component_params(component), title=f"backend {name}", doc=component.summary
                        )
                    }
                },
            }
        )
    schema: JSON = {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "runner recipe",
        "description": "A runner training recipe (TOML). Generated by `runner recipe schema`.",
        "type": "object",
        "properties": properties,
        "required": ["model", "task"],
        "additionalProperties": False,
        "$defs": defs,
    }
    if branches:
        schema["allOf"] = branches
    return schema


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
        if isinstance(extra, dict) and extra and prefix.startswith("data."):
            walk(f"{prefix}.main", extra, depth + 1)

    walk("", schema, 0)
    seen: set[str] = set()
    unique = []
    for path, sub in out:
        if path not in seen:
            seen.add(path)
            unique.append((path, sub))
    return unique


__all__ = ["REQUIRED", "component_table", "key_paths", "recipe_schema", "type_schema"]
