"""``runner explain RECIPE``: where every component and value of a recipe comes from.

For each component the recipe names: the plugin (distribution and version) providing it,
its summary (the first line of its documentation) and its resolved parameters, each with
its source: ``default``, the recipe's ``file:line``, or the ``-o`` override that set it.
Then, for each hook, the implementations in the order they are called: registration
hooks in plugin load order (the registry calls them), every other hook in pluggy's order
(wrappers first, then ``tryfirst``, then plain ones with the last registered first, then
``trylast``), including the callback objects (``[[callbacks]]``, ``[checkpoint]``) that
join when the run starts; their methods are read from the source without importing it
(for a ``@runner.component``, from the class its ``build`` returns), so nothing here
imports torch.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from typing import Any

import attrs

from runner._contract import grammar
from runner._contract.recipe import ComponentConfig, Recipe
from runner._plugins.manager import CALLBACK_HOOKS, PluginManager
from runner._plugins.registry import Component
from runner._recipe.locate import KeyPath, Location
from runner._recipe.source import COMMAND_LINE, RecipeSource, format_path


@attrs.frozen
class Value:
    """One resolved parameter and where it came from."""

    key: str
    value: Any
    source: str  # "default", "file:line" or "-o key=value"


@attrs.frozen
class Explained:
    """One component (or core section) of a recipe."""

    path: str
    kind: str
    name: str
    provider: str
    values: list[Value]
    summary: str = ""


@attrs.frozen
class Impl:
    """One hook implementation, in call order."""

    owner: str
    provider: str
    flags: tuple[str, ...]


def origin(source: RecipeSource, path: KeyPath) -> str:
    """Where the value at ``path`` came from: ``-o ...``, ``file:line`` or ``default``."""
    locations = source.sources.locations
    key = path
    while key:  # an override of the key or of a table above it owns the value
        location = locations.get(key)
        if location is not None and location.file.startswith(COMMAND_LINE):
            return location.file[len(COMMAND_LINE) :].strip()
        key = key[:-1]
    exact: Location | None = locations.get(path)
    if exact is None:
        return "default"
    return f"{exact.file}:{exact.line}" if exact.line is not None else exact.file


def _values(source: RecipeSource, base: KeyPath, table: dict[str, Any]) -> list[Value]:
    return [Value(key, value, origin(source, (*base, key))) for key, value in table.items()]


def explain_components(source: RecipeSource, recipe: Recipe, plugins: PluginManager) -> list[Explained]:
    """Every section and component of ``recipe`` (walked with the grammar, in resolved
    order) with its provider and the source of each value."""
    out: list[Explained] = []
    for path, node, value in grammar.walk(recipe.resolved):
        if not isinstance(value, dict):
            continue
        if isinstance(node, grammar.Fields):
            name = value.get("name") if node.component is not None else None
            kind = node.component if isinstance(name, str) and node.component else str(path[-1])
            found = plugins.registry.find(kind, name) if isinstance(name, str) else None
            table = {k: v for k, v in value.items() if k != "name" or found is None}
            provider = str(found.plugin) if found is not None else "runner-core"
            summary = found.summary if found is not None else ""
            out.append(Explained(format_path(path), kind, name or "", provider, _values(source, path, table), summary))
        elif isinstance(node, grammar.Component):
            if node.chosen_by is not None:
                name = getattr(recipe.sections.get(str(node.chosen_by[0])), str(node.chosen_by[-1]), None)
            else:
                name = value.get("name")
            found = plugins.registry.find(node.kind, name) if isinstance(name, str) else None
            if found is None:
                continue
            table = {k: v for k, v in value.items() if k != "name"}
            values = _values(source, path, table)
            out.append(Explained(format_path(path), node.kind, str(name), str(found.plugin), values, found.summary))
    return out


# -- hooks -------------------------------------------------------------------------------


@attrs.frozen
class _Pending:
    """Stands in for a pluggy HookImpl when placing run-time callback objects in order."""

    owner: str
    provider: str
    tryfirst: bool = False
    trylast: bool = False
    wrapper: bool = False
    hookwrapper: bool = False


def _insert(impls: list[Any], impl: Any) -> None:
    """pluggy's ``HookCaller._add_hookimpl``: the list is called in reverse."""
    split = next((i for i, m in enumerate(impls) if m.hookwrapper or m.wrapper), len(impls))
    start, end = (split, len(impls)) if impl.hookwrapper or impl.wrapper else (0, split)
    if impl.trylast:
        impls.insert(start, impl)
    elif impl.tryfirst:
        impls.insert(end, impl)
    else:
        i = end - 1
        while i >= start and impls[i].tryfirst:
            i -= 1
        impls.insert(i + 1, impl)


def _flags(impl: Any) -> tuple[str, ...]:
    flags = []
    if impl.wrapper or impl.hookwrapper:
        flags.append("wrapper" if impl.wrapper else "hookwrapper")
    if impl.tryfirst:
        flags.append("tryfirst")
    if impl.trylast:
        flags.append("trylast")
    return tuple(flags)


def _parse(module_name: str) -> ast.Module | None:
    """The source of ``module_name`` as an AST, found without importing it (None if unreadable)."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, encoding="utf-8") as handle:
            return ast.parse(handle.read())
    except (OSError, SyntaxError):
        return None


def _returned_name(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The class name a function's return annotation names (``-> X`` or ``-> "X"``)."""
    returns = function.returns
    if isinstance(returns, ast.Name):
        return returns.id
    if isinstance(returns, ast.Constant) and isinstance(returns.value, str):
        return returns.value
    return None


def _find_class(module_name: str, name: str, depth: int = 0) -> ast.ClassDef | None:
    """The class ``name`` of a module's source, or the one behind ``name``: a factory function's
    or a ``@runner.component``'s ``build`` return annotation, followed through ``from`` imports."""
    tree = _parse(module_name)
    if tree is None or depth > 4:
        return None
    top = {node.name: node for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    node = top.get(name)
    if node is None:  # imported here, at module level or under `if TYPE_CHECKING:`
        for item in ast.walk(tree):
            if isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
                for alias in item.names:
                    if (alias.asname or alias.name) == name:
                        return _find_class(item.module, alias.name, depth + 1)
        return None
    if isinstance(node, ast.FunctionDef):  # a factory function: follow its return annotation
        returned = _returned_name(node)
        return _find_class(module_name, returned, depth + 1) if returned else None
    build = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "build"), None)
    if build is not None and not any(isinstance(f, ast.FunctionDef) and f.name in CALLBACK_HOOKS for f in node.body):
        returned = _returned_name(build)  # a declaration: the object is what build() returns
        return _find_class(module_name, returned, depth + 1) if returned else None
    return node


def _class_methods(component: Component) -> dict[str, dict[str, bool]] | None:
    """Hook methods of a callback component's class, read from source (no import), or None."""
    from runner._contract.declaration import is_declaration

    ref = component.factory_ref
    if not isinstance(ref, str):
        if not is_declaration(ref):
            target = ref
            methods: dict[str, dict[str, bool]] = {n: {} for n in CALLBACK_HOOKS if callable(getattr(target, n, None))}
            return methods
        ref = f"{ref.__module__}:{ref.__qualname__}"
    module_name, _, attr = ref.partition(":")
    node = _find_class(module_name, attr)
    if node is None:
        return None
    found: dict[str, dict[str, bool]] = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in CALLBACK_HOOKS:
            options: dict[str, bool] = {}
            for decorator in item.decorator_list:
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg and isinstance(keyword.value, ast.Constant):
                            options[keyword.arg] = bool(keyword.value.value)
            found[item.name] = options
    return found


def explain_hooks(recipe: Recipe, plugins: PluginManager) -> tuple[dict[str, list[Impl]], list[str]]:
    """``{hook: implementations in call order}`` and notes on callback objects read from source."""
    from runner import hookspecs

    runtime: list[tuple[str, Component, dict[str, dict[str, bool]]]] = []
    notes: list[str] = []
    configs: list[ComponentConfig] = list(recipe.callbacks)
    if recipe.checkpoint is not None:
        configs.append(recipe.checkpoint)
    for index, config in enumerate(configs):
        component = plugins.registry.get(config.kind, config.name)
        owner = f"{config.kind}:{config.name}#{index}"
        methods = _class_methods(component)
        if methods is None:
            notes.append(f"{owner}: hook methods unknown until the run builds it ({component.factory_ref})")
            continue
        runtime.append((owner, component, methods))

    order: dict[str, list[Impl]] = {}
    specs = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, f"{hookspecs.PROJECT}_spec")]
    for name in specs:
        impls: list[Any] = list(plugins.hook(name).get_hookimpls())
        for owner, component, methods in runtime:
            if name in methods:
                options = methods[name]
                _insert(
                    impls,
                    _Pending(
                        owner,
                        str(component.plugin),
                        tryfirst=options.get("tryfirst", False),
                        trylast=options.get("trylast", False),
                        wrapper=options.get("wrapper", False),
                        hookwrapper=options.get("hookwrapper", False),
                    ),
                )
        if not impls:
            continue
        rows = []
        # The registry calls registration hooks itself, in plugin load order; pluggy calls the others.
        called = impls if name.startswith("register_") else list(reversed(impls))
        for impl in called:
            if isinstance(impl, _Pending):
                rows.append(Impl(impl.owner, impl.provider, _flags(impl)))
            else:
                rows.append(Impl(impl.plugin_name, str(plugins.info(impl.plugin_name)), _flags(impl)))
        order[name] = rows
    return order, notes


def _show(value: Any) -> str:
    from runner._schema.export import json_value

    if value is None:
        return "unset"

    try:
        import json

        return json.dumps(json_value(value))
    except (TypeError, ValueError):
        return repr(value)


def render_text(
    path: str,
    components: Iterable[Explained],
    hooks: dict[str, list[Impl]],
    notes: list[str],
    code: Iterable[str] = (),
    files: Iterable[str] = (),
    merges: Iterable[str] = (),
) -> str:
    """The human-readable report ``runner explain`` prints; ``code``: the local plugins
    the recipe loads (a recipe with plugins is code, and says so); ``files``: the recipe
    files composed; ``merges``: what composition and overrides dropped."""
    lines = [f"recipe {path}"]
    included = [f for f in files if f != path]
    if included:
        lines.append(f"composed from: {', '.join(included)} (then {path})")
    lines += [f"note: {merge}" for merge in merges]
    if code:
        lines.append(f"this recipe runs code from: {', '.join(code)}")
    lines.append("")
    for item in components:
        title = f"[{item.path}]"
        if item.name:
            title += f" {item.kind} {item.name!r} from {item.provider}"
        else:
            title += f" (core, {item.provider})"
        lines.append(title)
        if item.summary:
            lines.append(f"  # {item.summary}")
        width = max((len(v.key) for v in item.values), default=0)
        for value in item.values:
            shown = f"{value.key.ljust(width)} = {_show(value.value)}"
            lines.append(f"  {shown.ljust(max(len(shown), 40))}  # {value.source}")
        lines.append("")
    lines.append("hooks, implementations in call order:")
    for name, impls in hooks.items():
        lines.append(f"  {name}")
        for rank, impl in enumerate(impls, 1):
            flags = f" [{', '.join(impl.flags)}]" if impl.flags else ""
            lines.append(f"    {rank}. {impl.owner} ({impl.provider}){flags}")
    for note in notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines) + "\n"


def as_json(
    components: Iterable[Explained],
    hooks: dict[str, list[Impl]],
    notes: list[str],
    code: Iterable[str] = (),
    files: Iterable[str] = (),
    merges: Iterable[str] = (),
) -> dict[str, Any]:
    """The report as JSON-ready data (``runs_code_from``: the recipe's local plugins)."""
    from runner._schema.export import json_value

    def plain(value: Any) -> Any:
        try:
            return json_value(value)
        except TypeError:
            return repr(value)

    return {
        "files": list(files),
        "merge_notes": list(merges),
        "runs_code_from": list(code),
        "components": [
            {
                "path": c.path,
                "kind": c.kind,
                "name": c.name,
                "provider": c.provider,
                "summary": c.summary,
                "params": [{"key": v.key, "value": plain(v.value), "source": v.source} for v in c.values],
            }
            for c in components
        ],
        "hooks": {name: [attrs.asdict(impl) for impl in impls] for name, impls in hooks.items()},
        "notes": notes,
    }
