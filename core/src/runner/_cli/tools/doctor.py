"""``runner plugins doctor``: check every installed plugin, one line per problem.

Checks, for each plugin the ``runner`` entry-point group names (minus disabled ones):

1. its entry module imports, in a fresh interpreter (so one plugin's imports cannot hide
   another's), quickly (under ``probe.SLOW_IMPORT_S``) and without pulling in a heavy
   library (``probe.HEAVY_MODULES``: torch, numpy, pandas...), which would slow every
   command, ``runner --help`` included; the import time of each plugin is reported;
2. it loads and its registration hooks run (a raising ``register_*`` hook leaves the plugin out);
3. every hook implementation names a runner hook (:meth:`PluginManager.check_pending`:
   ``register_dataset`` for ``register_datasets`` is otherwise silently never called);
4. no two plugins register the same component or command name;
5. every component it registers has a parameter schema that builds, and whose defaults
   have the declared types;
6. the runner-core version installed is in the range the plugin's distribution declares,
   and the plugin contract version (:data:`runner.CONTRACT_VERSION`) is in the range its
   entry module declares (``RUNNER_CONTRACT = ">=1.0,<2"``).

Components registered in the deprecated form (a factory with ``params=``) are listed as
warnings, one per component with what to write instead; they do not fail the check.
This, and ``runner.testing``'s ``check_components``, are the only places that say so:
both are run by plugin authors, while users of a plugin are never warned about it.

A plugin declares the core versions it works with the standard way: a requirement on
``runner-core`` in its distribution metadata (``dependencies = ["runner-core>=0.1,<0.2"]``
in ``pyproject.toml``, which becomes ``Requires-Dist: runner-core<0.2,>=0.1``). pip checks
it at install time, but ``pip install --no-deps``, editable installs and upgrading the
core alone skip that; the doctor checks it against what is installed now.
"""

from __future__ import annotations

from importlib import metadata

import attrs

from runner._cli.tools.probe import SLOW_IMPORT_S, ImportProbe
from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._version import __version__

CORE_DISTRIBUTION = "runner-core"


@attrs.frozen
class DoctorReport:
    """What the doctor found: the plugins it looked at and one line per problem."""

    checked: list[PluginInfo]
    problems: list[str]
    #: How long importing each installed plugin's entry module took, in a fresh interpreter.
    import_seconds: dict[PluginInfo, float] = attrs.field(factory=dict)
    deprecations: list[str] = attrs.Factory(list)


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def core_requirement_problem(info: PluginInfo, core_version: str = __version__) -> str | None:
    """A problem line when ``info``'s distribution requires a runner-core other than ``core_version``."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    try:
        requires = metadata.distribution(info.dist).requires or []
    except metadata.PackageNotFoundError:
        return None  # a local (-p) plugin: no metadata to check
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if _canonical(requirement.name) != CORE_DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            version = Version(core_version)
        except InvalidVersion:
            return None
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            return (
                f"plugin {info}: needs {CORE_DISTRIBUTION}{requirement.specifier} but {CORE_DISTRIBUTION} "
                f"{core_version} is installed; install a {info.dist} release made for this core, or a "
                f"{CORE_DISTRIBUTION} in that range"
            )
    return None


def _import_problems(probes: list[ImportProbe]) -> list[str]:
    """Entry modules that import a heavy library, or take long to import."""
    problems = []
    for probe in probes:
        if probe.error == "timeout":
            problems.append(f"plugin {probe.plugin}: importing its entry module {probe.entry_point!r} did not finish")
            continue
        if probe.error is not None:
            continue  # reported through manager.failures with the same message as everywhere else
        what = f"plugin {probe.plugin}: importing its entry module {probe.entry_point!r}"
        if probe.heavy:
            problems.append(
                f"{what} imports {', '.join(probe.heavy)} ({probe.seconds:.2f} s), which slows every runner "
                "command; register components as lazy 'module:attribute' strings and import heavy "
                "libraries inside their build() methods"
            )
        elif probe.seconds >= SLOW_IMPORT_S:
            problems.append(
                f"{what} takes {probe.seconds:.1f} s, and every runner command (runner --help too) waits for it; "
                "do slow work in build() methods or hooks, not at import"
            )
    return problems


def _component_problems(manager: PluginManager) -> list[str]:
    from runner._schema.check import check
    from runner._schema.export import json_value

    problems = []
    for component in manager.registry:
        label = f"plugin {component.plugin}: {component.kind} {component.name!r}"
        try:
            schema = component.schema
        except Exception as exc:
            problems.append(f"{label}: its parameter schema does not build: {type(exc).__name__}: {exc}")
            continue
        for field in schema.fields.values():
            if field.required or field.default is None:
                continue
            try:
                as_toml = json_value(field.default)  # what a recipe would write: lists, not tuples
            except TypeError:
                continue
            _, issues = check(as_toml, field.type)
            if issues:
                problems.append(
                    f"{label}: the default of parameter {field.name!r} does not match its type: {issues[0][1]}"
                )
    return problems


def _deprecations(manager: PluginManager) -> list[str]:
    found = []
    for component in manager.registry:
        try:
            message = component.deprecation
        except Exception:
            continue  # reported as a schema problem
        if message:
            found.append(message)
    return found


def diagnose(manager: PluginManager | None = None) -> DoctorReport:
    """Run every check; ``manager`` defaults to one loading all installed plugins."""
    from runner._cli.tools.probe import probe_imports

    manager = manager if manager is not None else PluginManager()
    probes = probe_imports([(ep, info) for ep, info in manager.discover() if not manager.is_disabled(info)])
    problems = _import_problems(probes)
    manager.load()
    problems += [f"{failure}" for failure in manager.failures]
    problems += manager.check_pending()
    problems += manager.registry.clashes()
    problems += manager.contract_problems()
    problems += _component_problems(manager)
    checked = manager.plugins()
    for info in checked:
        problem = core_requirement_problem(info)
        if problem is not None:
            problems.append(problem)
    checked += [failure.plugin for failure in manager.failures]
    return DoctorReport(
        checked=checked,
        problems=problems,
        import_seconds={probe.plugin: probe.seconds for probe in probes},
        deprecations=_deprecations(manager),
    )
