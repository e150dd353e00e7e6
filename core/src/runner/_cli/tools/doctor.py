"""``runner plugins doctor``: check every installed plugin, one line per problem.

Checks, for each plugin the ``runner`` entry-point group names (minus disabled ones):

1. its entry module imports, and does so without importing torch (which would slow
   every command, ``runner --help`` included);
2. its registration hooks run (a raising ``register_*`` hook leaves the plugin out);
3. every hook implementation names a runner hook (:meth:`PluginManager.check_pending`:
   ``register_dataset`` for ``register_datasets`` is otherwise silently never called);
4. every component it registers has a parameter schema that builds, and whose defaults
   have the declared types;
5. the runner-core version installed is in the range the plugin's distribution declares.

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

import sys
from importlib import metadata

import attrs

from runner._contract.registration import PluginInfo
from runner._plugins.manager import PluginManager
from runner._version import __version__

CORE_DISTRIBUTION = "runner-core"


@attrs.frozen
class DoctorReport:
    """What the doctor found: the plugins it looked at and one line per problem."""

    checked: list[PluginInfo]
    problems: list[str]
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


def _import_problems(manager: PluginManager) -> list[str]:
    """Import each entry module on its own, noting any that pulls torch in."""
    problems = []
    for ep, info in manager.discover():
        if manager.is_disabled(info):
            continue
        had_torch = "torch" in sys.modules
        try:
            ep.load()
        except Exception:
            continue  # reported through manager.failures with the same message as everywhere else
        if not had_torch and "torch" in sys.modules:
            problems.append(
                f"plugin {info}: importing its entry module {ep.value!r} imports torch, which slows every "
                "runner command; register components as lazy 'module:attribute' strings and import "
                "torch inside their build() methods"
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
    manager = manager if manager is not None else PluginManager()
    problems = _import_problems(manager)
    manager.load()
    problems += [f"{failure}" for failure in manager.failures]
    problems += manager.check_pending()
    problems += _component_problems(manager)
    checked = manager.plugins()
    for info in checked:
        problem = core_requirement_problem(info)
        if problem is not None:
            problems.append(problem)
    checked += [failure.plugin for failure in manager.failures]
    return DoctorReport(checked=checked, problems=problems, deprecations=_deprecations(manager))
