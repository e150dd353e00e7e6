"""Named components that plugins register and recipes refer to.

A component is a factory plus the schema of its recipe parameters. Registration never
imports the factory's module: ``factory`` may be a lazy ``"module:attribute"`` string,
and ``params`` (an attrs class, or a lazy ``"module:attribute"`` reference to one)
describes the parameters so recipes validate without importing torch. Without ``params``
the schema is read from the factory's signature.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from runner._contract.errors import PluginError, RunnerError
from runner._contract.registration import PluginInfo
from runner._contract.suggest import did_you_mean

if TYPE_CHECKING:
    from runner._schema.fields import ParamSchema

KINDS: tuple[str, ...] = (
    "dataset",
    "collate",
    "sampler",
    "transform",
    "processor",
    "datamodule",
    "model",
    "task",
    "optimizer",
    "scheduler",
    "callback",
    "backend",
    "checkpointer",
    "logger",
    "loader",
    "executor",
    "function",
)

#: Arguments the engine passes to factories of each kind at build time. They are not
#: recipe parameters, so they are left out of the schema read from a signature.
RUNTIME_ARGS: dict[str, frozenset[str]] = {
    "sampler": frozenset({"dataset", "seed"}),
    "optimizer": frozenset({"model"}),
    "scheduler": frozenset({"optimizer", "total_steps", "steps_per_epoch"}),
    "checkpointer": frozenset({"run_dir"}),
    "logger": frozenset({"run_dir"}),
    "dataset": frozenset({"seed", "registry", "build_dataset"}),
    "transform": frozenset({"registry"}),
    "loader": frozenset({"split", "registry", "train", "on_cuda", "collate", "sampler_factory", "loader_config"}),
}
#: Every factory may ask for the build context by declaring a ``ctx`` parameter.
CONTEXT_ARG = "ctx"


def resolve_reference(ref: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attr_path = ref.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"lazy reference {ref!r} must look like 'package.module:attribute'")
    target: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        target = getattr(target, part)
    return target


@attrs.define(eq=False)
class Component:
    """A registered factory: its kind, recipe name, parameter schema and owner."""

    kind: str
    name: str
    factory_ref: Callable[..., Any] | str
    plugin: PluginInfo
    params: type | str | None = None
    doc: str = ""
    _factory: Callable[..., Any] | None = attrs.field(default=None, init=False)
    _schema: ParamSchema | None = attrs.field(default=None, init=False)

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory, imported on first use."""
        if self._factory is None:
            self._factory = self._resolve(self.factory_ref, "")
        return self._factory

    @property
    def schema(self) -> ParamSchema:
        """The parameter schema, read from ``params`` or the factory signature."""
        if self._schema is None:
            from runner._schema.fields import schema_from_attrs, schema_from_callable

            excluded = RUNTIME_ARGS.get(self.kind, frozenset()) | {CONTEXT_ARG}
            params_class = self.params_class
            if params_class is not None:
                self._schema = schema_from_attrs(params_class)
            else:
                self._schema = schema_from_callable(self.factory, excluded)
        return self._schema

    @property
    def params_class(self) -> type | None:
        """The attrs class describing the parameters (imported on first use if lazy)."""
        if isinstance(self.params, str):
            self.params = self._resolve(self.params, "parameters ")
        return self.params if isinstance(self.params, type) else None

    def _resolve(self, ref: Any, what: str) -> Any:
        """Import a lazy ``"module:attr"`` reference; a failure names the component's plugin."""
        if not isinstance(ref, str):
            return ref
        try:
            return resolve_reference(ref)
        except Exception as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin}: "
                f"cannot import {what}{ref!r}: {type(exc).__name__}: {exc}"
            ) from exc

    @property
    def summary(self) -> str:
        """First line of the component's documentation."""
        params_class = None if self.doc else self.params_class
        text = self.doc or (params_class.__doc__ if params_class is not None else "") or ""
        return text.strip().splitlines()[0] if text.strip() else ""

    def build(self, params: dict[str, Any], **runtime: Any) -> Any:
        """Call the factory with recipe ``params`` plus the runtime arguments it declares."""
        from runner._schema.fields import accepted_runtime_args

        factory = self.factory
        accepted = accepted_runtime_args(factory, set(runtime))
        kwargs = {k: v for k, v in runtime.items() if k in accepted}
        try:
            return factory(**params, **kwargs)
        except RunnerError:
            raise
        except Exception as exc:
            raise PluginError(
                f"{self.kind} {self.name!r} (plugin {self.plugin}) failed to build: {type(exc).__name__}: {exc}"
            ) from exc


@attrs.define
class CommandEntry:
    """A CLI subcommand contributed by a plugin (``command`` may be a lazy reference)."""

    name: str
    command: Any
    help: str
    plugin: PluginInfo

    def load(self) -> Any:
        """Return the ``click.Command``, importing it if registered lazily."""
        if isinstance(self.command, str):
            self.command = resolve_reference(self.command)
        return self.command


class UnknownComponentError(RunnerError):
    """A recipe names a component nobody registered (or that two plugins registered)."""


def _disable_hint(infos: list[PluginInfo]) -> str:
    """How to get rid of one side of a clash: the last installed plugin (the core and ``-p``
    plugins cannot be disabled, only not loaded)."""
    installed = [info for info in infos if info.version != "local" and info.dist != "runner-core"]
    if not installed:
        return "load only one of them (-p, or the recipe's plugins list)"
    later = installed[-1]
    return f"uninstall one, or disable it: -p no:{later.dist} (or RUNNER_DISABLE_PLUGINS={later.dist})"


def clash_message(what: str, infos: list[PluginInfo]) -> str:
    """``dataset 'spirals' is registered by 2 plugins, A and B: ...``: one line naming every distribution."""
    owners = ", ".join(str(info) for info in infos[:-1]) + f" and {infos[-1]}"
    return f"{what} is registered by {len(infos)} plugins, {owners}: {_disable_hint(infos)}"


class Registry:
    """All components of one plugin manager, by kind and name.

    Two plugins registering the same kind and name (or the same command name) is a
    *clash*: the registry keeps both, lists the clash (:meth:`clashes`), and resolves the
    name to neither, so only a recipe or command line that uses the name is refused.
    """

    def __init__(self) -> None:
        self._components: dict[str, dict[str, list[Component]]] = {kind: {} for kind in KINDS}
        self._commands: dict[str, list[CommandEntry]] = {}

    def add(self, component: Component) -> None:
        """Add a component; a second one of the same kind and name makes the name a clash."""
        if component.kind not in self._components:
            raise PluginError(f"unknown component kind {component.kind!r}")
        registered = self._components[component.kind].setdefault(component.name, [])
        if any(c.plugin == component.plugin for c in registered):
            raise PluginError(f"plugin {component.plugin} registers {component.kind} {component.name!r} twice")
        registered.append(component)

    def add_command(self, entry: CommandEntry) -> None:
        """Add a CLI subcommand; names clash like components."""
        registered = self._commands.setdefault(entry.name, [])
        if any(e.plugin == entry.plugin for e in registered):
            raise PluginError(f"plugin {entry.plugin} registers command {entry.name!r} twice")
        registered.append(entry)

    @property
    def commands(self) -> dict[str, CommandEntry]:
        """Commands by name, clashing names left out (see :meth:`command_clash`)."""
        return {name: entries[0] for name, entries in self._commands.items() if len(entries) == 1}

    def command_entries(self, name: str) -> list[CommandEntry]:
        """Every registration of command ``name`` (two or more: a clash)."""
        return list(self._commands.get(name, []))

    def command_names(self) -> list[str]:
        """Every registered command name, clashing ones included, sorted."""
        return sorted(self._commands)

    def command_clash(self, name: str) -> str | None:
        """The clash message for command ``name``, or None when at most one plugin registered it."""
        entries = self._commands.get(name, [])
        return clash_message(f"command {name!r}", [e.plugin for e in entries]) if len(entries) > 1 else None

    def clash(self, kind: str, name: str) -> str | None:
        """The clash message for a component name, or None when at most one plugin registered it."""
        registered = self._components.get(kind, {}).get(name, [])
        return clash_message(f"{kind} {name!r}", [c.plugin for c in registered]) if len(registered) > 1 else None

    def clashes(self) -> list[str]:
        """Every clash (components, then commands), one line each."""
        lines = [
            clash_message(f"{kind} {name!r}", [c.plugin for c in registered])
            for kind, by_name in self._components.items()
            for name, registered in sorted(by_name.items())
            if len(registered) > 1
        ]
        return lines + [line for name in sorted(self._commands) if (line := self.command_clash(name)) is not None]

    def remove_plugin(self, plugin: str | PluginInfo) -> None:
        """Drop every component and command a plugin (its name or its PluginInfo) registered."""

        def owned(info: PluginInfo) -> bool:
            return info == plugin if isinstance(plugin, PluginInfo) else info.name == plugin

        for by_name in self._components.values():
            for name in list(by_name):
                by_name[name] = [c for c in by_name[name] if not owned(c.plugin)]
                if not by_name[name]:
                    del by_name[name]
        for name in list(self._commands):
            self._commands[name] = [e for e in self._commands[name] if not owned(e.plugin)]
            if not self._commands[name]:
                del self._commands[name]

    def names(self, kind: str) -> list[str]:
        """Registered names of ``kind`` (clashing ones left out), sorted."""
        return sorted(name for name, registered in self._components[kind].items() if len(registered) == 1)

    def find(self, kind: str, name: str) -> Component | None:
        """The component, or None when nobody (or more than one plugin) registered the name."""
        registered = self._components[kind].get(name, [])
        return registered[0] if len(registered) == 1 else None

    def get(self, kind: str, name: str) -> Component:
        """The component, or an error with a did-you-mean."""
        component = self.find(kind, name)
        if component is None:
            raise UnknownComponentError(self.unknown_message(kind, name))
        return component

    def function(self, name: str) -> Callable[..., Any]:
        """The function a plugin registered as ``name`` (``register_functions``): what a
        component's ``param(registered="function")`` parameter names. Unknown names are
        an error with a did-you-mean."""
        component = self.get("function", name)
        function = component.factory
        if not callable(function):
            raise PluginError(f"function {name!r} from plugin {component.plugin} is not callable")
        return function

    def unknown_message(self, kind: str, name: str) -> str:
        """``unknown dataset 'digts' (did you mean 'digits'?)`` style message (or the clash, if one)."""
        clash = self.clash(kind, name)
        if clash is not None:
            return clash
        message = f"unknown {kind} {name!r}"
        hint = did_you_mean(name, self.names(kind))
        if hint:
            message += f" ({hint})"
        else:
            known = ", ".join(self.names(kind)) or "none installed"
            message += f"; registered {kind}s: {known}"
        return message

    def __iter__(self) -> Iterator[Component]:
        """Every registered component, clashing ones included."""
        for by_name in self._components.values():
            for registered in by_name.values():
                yield from registered

    def by_plugin(self, plugin: str | PluginInfo) -> list[Component]:
        """Components a given plugin (its name or its PluginInfo) registered."""
        if isinstance(plugin, PluginInfo):
            return [c for c in self if c.plugin == plugin]
        return [c for c in self if c.plugin.name == plugin]
