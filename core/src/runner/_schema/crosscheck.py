"""Run a declaration's ``@runner.check`` rules on validated parameters.

Rules see an instance of the declaration. When every parameter is valid that is the real
instance (``cls(**params)``); while some have problems of their own, the rules that read
none of those still run, on an instance holding only the valid values, so that
``runner recipe check`` reports every problem at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from runner._contract.declaration import checks_of
from runner._contract.params import init_arguments, recipe_key
from runner._schema.check import Issue


class CheckRaised(Exception):
    """A rule (or creating the instance it runs on) raised: a bug in the plugin, not the recipe."""

    def __init__(self, method: str, exc: BaseException) -> None:
        super().__init__(f"check {method}() raised {type(exc).__name__}: {exc}")
        self.method = method


def _partial(cls: type, params: dict[str, Any]) -> Any:
    """An instance with the attributes in ``params`` set and no others (no ``__init__``)."""
    instance: Any = object.__new__(cls)
    for a in attrs.fields(cls):
        key = recipe_key(a)
        if key in params:
            object.__setattr__(instance, a.name, params[key])
    return instance


def run_checks(instance: Any, *, skip: Iterable[object] = (), partial: bool = False) -> list[Issue]:
    """``[((first key,), message), ...]`` for every rule of ``instance``'s class that fails.

    Rules naming a key in ``skip`` are not run. With ``partial``, a rule that reads an
    attribute the instance lacks is skipped too (that parameter has its own problem).
    """
    skipped: set[object] = set(skip)
    issues: list[Issue] = []
    for method, keys in checks_of(type(instance)):
        if skipped & set(keys):
            continue
        try:
            message = getattr(instance, method)()
        except AttributeError:
            if partial:
                continue
            raise
        except Exception as exc:
            raise CheckRaised(method, exc) from exc
        if message:
            issues.append(((keys[0],), str(message)))
    return issues


def cross_issues(cls: type, params: dict[str, Any], invalid: Iterable[object] = ()) -> list[Issue]:
    """Failures of ``cls``'s rules for validated ``params`` (defaults filled in).

    ``invalid`` are the keys that already have a problem (wrong type, failed check,
    missing); rules reading them are skipped. Raises :class:`CheckRaised` when a rule
    or the declaration's ``__init__`` raises.
    """
    if not checks_of(cls):
        return []
    bad: set[object] = set(invalid)
    if bad:
        return run_checks(_partial(cls, {k: v for k, v in params.items() if k not in bad}), skip=bad, partial=True)
    try:
        instance = cls(**init_arguments(params))
    except Exception as exc:
        raise CheckRaised("__init__", exc) from exc
    return run_checks(instance)
