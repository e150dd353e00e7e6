"""Named components that plugins register and recipes refer to.

A component is registered in one of three forms, all of which registration accepts
without importing anything (each may be a lazy ``"module:attribute"`` string):

- a *declaration*: a :func:`runner.component` class whose fields are the parameters,
  whose docstring is the documentation and whose ``build`` method makes the object
  (the recommended form: one declaration per component);
- a factory with ``params``, an attrs class describing its parameters (deprecated: the
  class and the factory's signature must agree by hand);
- a bare factory whose signature is the schema (it is imported to read it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from runner._contract.errors import PluginError, RunnerError
from runner._contract.params import init_arguments
from runner._contract.registration import PluginInfo
from runner._contract.suggest import did_you_mean

if TYPE_CHECKING:
    from runner._schema.check import Issue
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
    "sweeper",
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
    """A registered component: its kind, recipe name, declaration or factory, and owner.

    ``factory_ref`` is what was registered: a :func:`runner.component` class, a factory,
    or a lazy ``"module:attribute"`` reference to either (imported on first use).
    """

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
        """The registered declaration class or factory, imported on first use."""
        if self._factory is None:
            self._factory = self._resolve(self.factory_ref, "")
        return self._factory

    @property
    def declaration(self) -> type | None:
        """The :func:`runner.component` class, or None for a factory (imports a lazy reference)."""
        from runner._contract.declaration import is_declaration

        factory = self.factory
        if not is_declaration(factory):
            return None
        assert isinstance(factory, type)
        if self.params is not None:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin}: {factory.__qualname__} is a "
                "@runner.component class, which declares its own parameters; register it without params="
            )
        return factory

    @property
    def schema(self) -> ParamSchema:
        """The parameter schema: the declaration's (or ``params``') fields, else the factory signature."""
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
        """The attrs class describing the parameters: ``params``, or the declaration itself.

        Without ``params`` this imports a lazy factory reference to find out whether it is
        a declaration.
        """
        if self.params is None:
            return self.declaration
        if isinstance(self.params, str):
            self.params = self._resolve(self.params, "parameters ")
        if self._factory is not None or not isinstance(self.factory_ref, str):
            _ = self.declaration  # params= next to a declaration is an error (a lazy factory: when built)
        return self.params if isinstance(self.params, type) else None

    @property
    def deprecation(self) -> str | None:
        """Why and how to migrate when registered in the deprecated form (a factory with
        ``params=``); None otherwise. Imports nothing: a lazy factory may import torch."""
        if self.params is None:
            return None
        from runner._contract.declaration import is_declaration

        if is_declaration(self._factory if self._factory is not None else self.factory_ref):
            return None  # not deprecated but wrong: reported when its parameters are read
        params = self.params
        ref = params if isinstance(params, str) else f"{params.__module__}:{params.__qualname__}"
        return (
            f"plugin {self.plugin}: {self.kind} {self.name!r} is registered with params= and a separate factory, "
            f"which is deprecated: make {ref.rpartition(':')[2]} the component (decorate it with @runner.component "
            f"and move the factory's body into its build(self, ...) method), then register the class alone: "
            f"register({self.name!r}, {ref!r})"
        )

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
        """The first paragraph of the component's documentation (``doc``, else the
        declaration's or ``params``' docstring) on one line: its first line, when the
        summary fits on one as it should."""
        params_class = None if self.doc else self.params_class
        text = self.doc or (params_class.__doc__ if params_class is not None else "") or ""
        return " ".join(text.strip().split("\n\n")[0].split())

    def check_params(self, params: dict[str, Any], invalid: Iterable[object] = ()) -> list[Issue]:
        """Failures of the declaration's ``@runner.check`` rules for validated ``params``
        (none for factories). Keys in ``invalid`` have problems of their own: rules reading
        them are skipped. A rule that raises is reported as this plugin's error."""
        if self.params is not None:
            return []  # a factory with a params class: no rules, and its lazy module stays unimported
        declaration = self.declaration
        if declaration is None:
            return []
        from runner._schema.crosscheck import CheckRaised, cross_issues

        try:
            return cross_issues(declaration, params, invalid)
        except CheckRaised as exc:
            raise PluginError(f"{self.kind} {self.name!r} (plugin {self.plugin}): {exc}") from exc

    def build(self, params: dict[str, Any], **runtime: Any) -> Any:
        """Build the component from recipe ``params`` plus the runtime arguments it declares.

        A declaration is created from ``params``, its ``@runner.check`` rules run (a failure
        is a :class:`RunnerError`, so a wrong combination never reaches ``build``), then its
        ``build`` is called; a factory is called with ``params`` as keyword arguments.
        """
        from runner._schema.fields import accepted_runtime_args

        target = self.factory
        label = f"{self.kind} {self.name!r} (plugin {self.plugin})"
        if self.declaration is not None:
            target = self._declare(params, label).build
            params = {}
        accepted = accepted_runtime_args(target, set(runtime))
        kwargs = {k: v for k, v in runtime.items() if k in accepted}
        try:
            return target(**params, **kwargs)
        except RunnerError:
            raise
        except Exception as exc:
            raise PluginError(f"{label} failed to build: {type(exc).__name__}: {exc}") from exc

    def _declare(self, params: dict[str, Any], label: str) -> Any:
        """The declaration's instance for ``params``, its rules checked."""
        from runner._schema.crosscheck import CheckRaised, run_checks

        assert self.declaration is not None
        try:
            instance = self.declaration(**init_arguments(params))
            issues = run_checks(instance)
        except CheckRaised as exc:
            raise PluginError(f"{label}: {exc}") from exc
        except Exception as exc:
            raise PluginError(f"{label} failed to build: {type(exc).__name__}: {exc}") from exc
        if issues:
            shown = "; ".join(f"{path[0]}: {message}" for path, message in issues)
            raise RunnerError(f"{label}: {shown}")
        return instance


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
