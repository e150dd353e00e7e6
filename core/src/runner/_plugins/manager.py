"""Plugin discovery, loading and hook calls.

Plugins are distributions with an entry point in the ``runner`` group. Discovery reads
package metadata only; a plugin's module is imported at most once, the first time
anything needs the plugins. A plugin that fails to import or register is recorded
(distribution, version, error), leaves nothing registered, and the others still load;
that includes a plugin whose import code calls ``sys.exit()``. Hook calls go through
:meth:`PluginManager.call`, which names the plugin whose implementation raised.

A plugin is identified by its distribution *and* entry-point name: two distributions
with an entry point of the same name both load. Problems that do not stop a plugin from
loading (misspelt hook names, two plugins registering one name, a contract range that
excludes this core, slow loading) are listed by :meth:`PluginManager.warnings`; the CLI
prints them on every command.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import time
import types
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pluggy

from runner import hookspecs
from runner._contract.errors import PluginError
from runner._contract.registration import PluginInfo
from runner._contract.suggest import close_matches
from runner._plugins.discovery import EntryPoint, entry_points
from runner._plugins.guards import SigintWatch, describe, failure_text
from runner._plugins.registry import KINDS, CommandEntry, Component, Registry
from runner._plugins.versions import contract_problem
from runner._version import __version__

ENTRY_POINT_GROUP = "runner"
DISABLE_ENV = "RUNNER_DISABLE_PLUGINS"
ALLOW_ENV = "RUNNER_PLUGINS"
BUILTIN = PluginInfo(name="runner", dist="runner-core", version=__version__)
#: Loading plugins for longer than this (seconds) earns a warning naming the slowest.
SLOW_LOAD_S = 3.0

#: Registration hook name for each component kind.
REGISTRATION_HOOKS: dict[str, str] = {kind: f"register_{kind}s" for kind in KINDS}
CALLBACK_HOOKS: frozenset[str] = frozenset(
    name
    for name in dir(hookspecs)
    if name.startswith("on_")
    or name in {"get_state", "update_state", "setup", "teardown", "get_optimizers_schedulers", "get_model_weights"}
)
#: Every hook name the plugin contract defines.
HOOK_NAMES: frozenset[str] = frozenset(
    name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "runner_spec")
)


@attrs.frozen
class PluginFailure:
    """A plugin that could not be loaded or whose registration failed."""

    plugin: PluginInfo
    error: str

    def __str__(self) -> str:
        return f"plugin {self.plugin} failed to load: {self.error}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _split_env(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _print_warning(line: str) -> None:
    print(f"warning: {line}", file=sys.stderr, flush=True)


class _Pluggy(pluggy.PluginManager):
    """pluggy, plus: objects registered as run callbacks need no ``@hookimpl`` markers, and
    registration is all or nothing on every pluggy version."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.callback_objects: set[int] = set()

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and id(plugin) in self.callback_objects and name in CALLBACK_HOOKS:
            member = getattr(plugin, name, None)
            if callable(member):
                return pluggy.HookimplOpts(
                    wrapper=False, hookwrapper=False, optionalhook=False, tryfirst=False, trylast=False, specname=None
                )
        return opts

    def register(self, plugin: object, name: str | None = None) -> str | None:
        try:
            return super().register(plugin, name)
        except BaseException:
            # pluggy < 1.7 validates and adds hookimpls one at a time: a bad one leaves the
            # earlier ones registered. Undo them, so a failed plugin contributes nothing.
            if name is not None and self.get_plugin(name) is plugin:
                self.unregister(plugin=plugin, name=name)
            raise


class PluginManager:
    """Finds, loads and calls runner plugins; owns the component registry."""

    def __init__(
        self,
        *,
        local_plugins: Iterable[str] = (),
        use_entry_points: bool = True,
        disabled: Iterable[str] = (),
    ) -> None:
        self._pm = _Pluggy()
        self._pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}  # pluggy's plugin name -> who it is
        self._local = list(local_plugins)
        self._use_entry_points = use_entry_points
        self._disabled = set(disabled) | _split_env(DISABLE_ENV)
        self._disabled |= {spec[3:] for spec in self._local if spec.startswith("no:")}
        self._loaded = False
        self._registry: Registry | None = None
        self._load_failures: list[PluginFailure] = []
        self._registration_failures: list[PluginFailure] = []
        self._contract_problems: list[str] = []
        self._import_seconds: dict[PluginInfo, float] = {}
        self._warnings: list[str] | None = None
        #: Where problems found while a run registers callback objects go (default: stderr).
        self.warn: Callable[[str], None] = _print_warning

    # -- discovery and loading --------------------------------------------------------

    @staticmethod
    def discover() -> list[tuple[EntryPoint, PluginInfo]]:
        """Entry points in the ``runner`` group, from metadata only (nothing imported)."""
        found = [
            (ep, PluginInfo(name=ep.name, dist=ep.dist, version=ep.version)) for ep in entry_points(ENTRY_POINT_GROUP)
        ]
        return sorted(found, key=lambda pair: (pair[1].name, pair[1].dist))

    def is_disabled(self, info: PluginInfo) -> bool:
        allowed = _split_env(ALLOW_ENV)
        if allowed and info.name not in allowed and info.dist not in allowed:
            return True
        return info.name in self._disabled or info.dist in self._disabled

    def load(self) -> PluginManager:
        """Import every enabled plugin once; failures are recorded, not raised."""
        if self._loaded:
            return self
        self._loaded = True
        builtin = importlib.import_module("runner._builtin")  # the core's own components, a plugin like any other

        self.add(builtin, BUILTIN)
        if self._use_entry_points:
            for ep, info in self.discover():
                if not self.is_disabled(info):
                    self._load_entry_point(ep, info)
        for spec in dict.fromkeys(self._local):  # each spec once, in order
            if spec.startswith("no:"):
                continue
            plugin, info = self._import_local(spec)
            self.add(plugin, info)
        return self

    def _load_entry_point(self, ep: EntryPoint, info: PluginInfo) -> None:
        started = time.perf_counter()
        try:
            with SigintWatch() as sigint:
                try:
                    plugin = ep.load()
                finally:
                    self._import_seconds[info] = time.perf_counter() - started
            self._register(plugin, info)
        except KeyboardInterrupt as exc:
            if sigint.from_user:  # Ctrl-C while loading: the user wants out
                raise
            self._load_failures.append(PluginFailure(info, failure_text(exc)))
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the others down
            self._load_failures.append(PluginFailure(info, failure_text(exc)))

    @property
    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to import or whose registration hooks raised (they are left out)."""
        _ = self.registry  # registration failures are known once the registry is built
        return [*self._load_failures, *self._registration_failures]

    @property
    def local_plugins(self) -> tuple[str, ...]:
        """The ``-p`` specs this manager loaded (workers in new processes load them again)."""
        return tuple(self._local)

    def load_local(self, spec: str) -> None:
        """Load one more ``-p`` plugin after the others (module name or ``.py`` file)."""
        self.load()
        if spec in self._local:
            return
        self._local.append(spec)
        plugin, info = self._import_local(spec)
        self.add(plugin, info)

    def _import_local(self, spec: str) -> tuple[object, PluginInfo]:
        started = time.perf_counter()
        plugin, info = _import_local(spec)
        self._import_seconds[info] = time.perf_counter() - started
        return plugin, info

    def add(self, plugin: object, info: PluginInfo) -> None:
        """Register a plugin object (module or instance) under ``info``."""
        try:
            self._register(plugin, info)
        except pluggy.PluginValidationError as exc:  # a hookimpl whose arguments match no hookspec
            raise PluginError(f"plugin {info} failed to load: {type(exc).__name__}: {_one_line(exc)}") from exc

    def _key(self, info: PluginInfo) -> str:
        """pluggy's name for a plugin: its entry-point name, qualified by its distribution
        when another distribution's plugin has the same name (both load)."""
        if info in self._info.values():
            raise PluginError(f"plugin {info} ({info.name!r}) is loaded twice")
        return info.name if info.name not in self._info else f"{info.dist}:{info.name}"

    def _register(self, plugin: object, info: PluginInfo) -> None:
        key = self._key(info)
        self._pm.register(plugin, name=key)  # all or nothing (see _Pluggy.register)
        self._info[key] = info
        declared = getattr(plugin, "RUNNER_CONTRACT", None)
        if declared is not None:
            problem = contract_problem(info, declared)
            if problem is not None:
                self._contract_problems.append(problem)
        self._registry = None
        self._warnings = None

    def check_pending(self) -> list[str]:
        """Hook implementations that match no hookspec (misspelt names), one line each."""
        problems = []
        for name in self._pm.hook.__dict__:
            if name.startswith("_"):
                continue
            hook = getattr(self._pm.hook, name)
            if not hook.has_spec():
                for impl in hook.get_hookimpls():
                    problems.append(f"plugin {self.info(impl.plugin_name)}: {_not_a_hook(name, HOOK_NAMES)}")
        return problems

    def warnings(self) -> list[str]:
        """Problems that leave every plugin loaded, one line each: misspelt hook names, name
        clashes, contract ranges that exclude this core, slow loading."""
        registry = self.registry
        if self._warnings is None:
            self._warnings = [
                *self.check_pending(),
                *registry.clashes(),
                *self._contract_problems,
                *self._slow_loading(),
            ]
        return list(self._warnings)

    def contract_problems(self) -> list[str]:
        """Plugins whose declared ``RUNNER_CONTRACT`` range is malformed or excludes this core's."""
        self.load()
        return list(self._contract_problems)

    def import_seconds(self) -> dict[PluginInfo, float]:
        """How long importing each plugin took in this process (entry points and ``-p`` plugins)."""
        return dict(self._import_seconds)

    def _slow_loading(self) -> list[str]:
        total = sum(self._import_seconds.values())
        if total < SLOW_LOAD_S or not self._import_seconds:
            return []
        slowest, seconds = max(self._import_seconds.items(), key=lambda item: item[1])
        return [
            f"loading plugins took {total:.1f} s, {seconds:.1f} s of it importing {slowest}; "
            f"'runner plugins doctor' shows why; disable it with -p no:{slowest.dist} "
            f"(or RUNNER_DISABLE_PLUGINS={slowest.dist})"
        ]

    # -- introspection ---------------------------------------------------------------

    def info(self, plugin_name: str) -> PluginInfo:
        return self._info.get(plugin_name, PluginInfo(plugin_name, plugin_name, "?"))

    def plugins(self) -> list[PluginInfo]:
        """Loaded plugins in load order."""
        self.load()
        return list(self._info.values())

    def plugin_modules(self) -> list[tuple[PluginInfo, str]]:
        """(plugin, module name) for every loaded plugin object."""
        self.load()
        return [
            (self.info(name), getattr(obj, "__name__", type(obj).__module__))
            for name, obj in self._pm.list_name_plugin()
            if obj is not None
        ]

    def hooks_of(self, plugin: str | PluginInfo) -> list[str]:
        """Names of the hooks a plugin (pluggy's name for it, or its PluginInfo) implements."""
        if isinstance(plugin, PluginInfo):
            keys = [key for key, info in self._info.items() if info == plugin]
            if not keys:
                return []
            plugin = keys[0]
        obj = self._pm.get_plugin(plugin)
        return sorted(caller.name for caller in self._pm.get_hookcallers(obj) or [])

    @property
    def registry(self) -> Registry:
        """All registered components; built on first access by the registration hooks."""
        if self._registry is None:
            self.load()
            registry = Registry()
            failed: dict[str, str] = {}
            for kind, hook_name in REGISTRATION_HOOKS.items():
                self._collect(hook_name, functools.partial(_component_register, registry, kind), failed)
            self._collect("register_commands", functools.partial(_command_register, registry), failed)
            # A plugin whose registration raised is left out whole, like one that failed to import.
            self._registration_failures += [PluginFailure(self.info(n), error) for n, error in failed.items()]
            for plugin_name in failed:
                registry.remove_plugin(self.info(plugin_name))
                self._pm.unregister(name=plugin_name)
                del self._info[plugin_name]
            self._registry = registry
            self._warnings = None
        return self._registry

    def _collect(
        self, hook_name: str, make_register: Callable[[PluginInfo], Callable[..., None]], failed: dict[str, str]
    ) -> None:
        hook = getattr(self._pm.hook, hook_name)
        for impl in hook.get_hookimpls():  # pluggy lists them in registration (= load) order
            if impl.plugin_name in failed:
                continue
            info = self.info(impl.plugin_name)
            try:
                returned = impl.function(register=make_register(info))
            except PluginError as exc:
                failed[impl.plugin_name] = f"hook {hook_name}: {_one_line(exc)}"
            except (Exception, SystemExit) as exc:
                failed[impl.plugin_name] = f"hook {hook_name} raised {failure_text(exc)}"
            else:
                if returned is not None:  # e.g. a list of components: none of them would be registered
                    failed[impl.plugin_name] = (
                        f"hook {hook_name} returned {describe(returned)}; registration hooks call "
                        "register(...) for each component and return None"
                    )

    # -- calling hooks ---------------------------------------------------------------

    def hook(self, name: str) -> pluggy.HookCaller:
        """The raw hook caller (for hot loops); call it through :meth:`call` elsewhere."""
        self.load()
        caller: pluggy.HookCaller = getattr(self._pm.hook, name)
        return caller

    def has_impls(self, name: str) -> bool:
        return bool(self.hook(name).get_hookimpls())

    def call(self, name: str, **kwargs: Any) -> Any:
        """Call a hook; an exception is re-raised as :class:`PluginError` naming its plugin."""
        caller = self.hook(name)
        try:
            return caller(**kwargs)
        except Exception as exc:
            raise self.blame(caller, exc) from exc

    def blame(self, caller: pluggy.HookCaller, exc: BaseException) -> BaseException:
        """Wrap ``exc`` in a PluginError naming the plugin whose hookimpl raised it."""
        if isinstance(exc, PluginError):
            return exc
        codes = {}
        for impl in caller.get_hookimpls():
            code = getattr(impl.function, "__code__", None)
            if code is not None:
                codes[code] = impl.plugin_name
        owner = None
        tb = exc.__traceback__
        while tb is not None:
            owner = codes.get(tb.tb_frame.f_code, owner)
            tb = tb.tb_next
        if owner is None:
            return exc
        return PluginError(f"plugin {self.info(owner)}: hook {caller.name} raised {type(exc).__name__}: {exc}")

    # -- run-scoped callback objects -------------------------------------------------

    def add_callback_object(self, obj: object, info: PluginInfo) -> None:
        """Register a component object so its ``on_*`` methods receive the callback hooks.

        A public ``on_*`` method that is no hook (``on_end_trian``) is never called: each
        is reported once through :attr:`warn`, with a did-you-mean.
        """
        self._pm.callback_objects.add(id(obj))
        try:
            self._pm.register(obj, name=info.name)
        except pluggy.PluginValidationError as exc:
            self._pm.callback_objects.discard(id(obj))
            raise PluginError(f"{info.name} (plugin {info}): {type(exc).__name__}: {_one_line(exc)}") from exc
        self._info[info.name] = info
        for line in callback_warnings(obj, info):
            self.warn(line)

    def remove_callback_object(self, obj: object) -> None:
        name = self._pm.get_name(obj)
        self._pm.unregister(obj)
        self._pm.callback_objects.discard(id(obj))
        if name is not None:
            self._info.pop(name, None)


def _not_a_hook(name: str, hooks: Iterable[str]) -> str:
    best = close_matches(name, hooks, limit=1)
    return f"{name} is not a runner hook" + (f" (did you mean {best[0]!r}?)" if best else "")


def callback_warnings(obj: object, info: PluginInfo) -> list[str]:
    """One line per public ``on_*`` method of a callback object that is no callback hook.

    ``info.name`` is ``"KIND:NAME#INDEX"`` for objects built from a recipe (as the engine
    registers them), which the message shows as ``callback 'NAME'``.
    """
    kind, _, rest = info.name.partition(":")
    label = f"{kind} {rest.rsplit('#', 1)[0]!r}" if rest else type(obj).__name__
    lines = []
    for name in dir(obj):
        if name.startswith("on_") and name not in CALLBACK_HOOKS and callable(getattr(obj, name, None)):
            lines.append(f"plugin {info}: {label} method {_not_a_hook(name, CALLBACK_HOOKS)}; it is never called")
    return lines


def _component_register(registry: Registry, kind: str, info: PluginInfo) -> Callable[..., None]:
    def register(
        name: str, factory: Callable[..., Any] | str, *, params: type | str | None = None, doc: str | None = None
    ) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"{kind} names must be non-empty strings, got {name!r}")
        if not (callable(factory) or isinstance(factory, str)):
            raise PluginError(
                f"{kind} {name!r}: the factory must be callable or a 'module:attribute' string, got {describe(factory)}"
            )
        text = doc if doc is not None else (getattr(factory, "__doc__", None) if not isinstance(factory, str) else "")
        registry.add(Component(kind=kind, name=name, factory_ref=factory, plugin=info, params=params, doc=text or ""))

    return register


def _command_register(registry: Registry, info: PluginInfo) -> Callable[..., None]:
    def register(name: str, command: Any, *, help: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"command names must be non-empty strings, got {describe(name)}")
        if not (callable(command) or isinstance(command, str)):
            raise PluginError(
                f"command {name!r} must be a click command or a 'module:attribute' string, got {describe(command)}"
            )
        if not isinstance(help, str):
            raise PluginError(f"command {name!r}: help must be a string, got {describe(help)}")
        registry.add_command(CommandEntry(name=name, command=command, help=help, plugin=info))

    return register


def _import_local(spec: str) -> tuple[object, PluginInfo]:
    """Import a ``-p`` plugin given as a module name or a ``.py`` file path."""
    from pathlib import Path  # only for -p plugins: `runner --help` does not need pathlib

    path = Path(spec)
    try:
        with SigintWatch() as sigint:
            if spec.endswith(".py"):
                if not path.is_file():
                    raise PluginError(f"plugin file {spec} not found")
                module_name = f"runner_local_{path.stem}"
                module_spec = importlib.util.spec_from_file_location(module_name, path)
                assert module_spec is not None and module_spec.loader is not None
                module: types.ModuleType = importlib.util.module_from_spec(module_spec)
                sys.modules[module_name] = module
                module_spec.loader.exec_module(module)
                return module, PluginInfo(name=path.stem, dist=str(path), version="local")
            return importlib.import_module(spec), PluginInfo(name=spec, dist=spec, version="local")
    except PluginError:
        raise
    except KeyboardInterrupt as exc:
        if sigint.from_user:
            raise
        raise PluginError(f"plugin {spec} failed to load: {failure_text(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise PluginError(f"plugin {spec} failed to load: {failure_text(exc)}") from exc
