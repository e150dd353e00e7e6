"""Declaring a component once: ``@runner.component`` classes and ``@runner.check`` rules (public API).

A component is one attrs class. Its fields are the recipe parameters (``runner.param``
gives each a default, a doc and a per-value check), its docstring documents it (the first
line is the summary ``runner plugins``, ``runner explain`` and ``runner recipe schema``
show), ``@runner.check`` methods relate several parameters, and ``build`` makes the
object::

    @runner.component
    class Ranges:
        \"\"\"Random integer ranges (first line: the summary).\"\"\"

        min_len: int = runner.param(1, doc="Shortest range.", check=runner.at_least(1))
        max_len: int = runner.param(8, doc="Longest range.")

        @runner.check("min_len", "max_len")
        def _ordered(self) -> str | None:
            return None if self.min_len <= self.max_len else "must not exceed max_len"

        def build(self, seed: int) -> RangesDataset:
            from my_plugin.ranges import RangesDataset  # torch stays out of this module

            return RangesDataset(self.min_len, self.max_len, seed)

and is registered by name, usually lazily: ``register("ranges", "my_plugin.components:Ranges")``.
Validation (``runner recipe check``) reads the fields, checks every value, then runs the
``@runner.check`` methods; a run (or ``runner.testing``) creates the instance from the
validated parameters, runs the checks again and calls ``build`` with the runtime
arguments it names (``ctx``, ``seed``, ``model``, ``run_dir``, ...), exactly as factories
receive them.

Why a decorator, rather than a base class or any "attrs class with a build method":

- it is one line and one import, and it makes the class an attrs class itself, so an
  author needs to know nothing about attrs; no base class enters the MRO, so a
  declaration can subclass whatever it likes (another declaration included);
- it marks the class explicitly: an attrs class registered as a plain factory (possibly
  with a ``build`` method of its own) keeps meaning what it meant, so plugins written
  against the older forms are never reinterpreted;
- mistakes show where they are made: a class without ``build``, or a check naming a
  parameter that does not exist, fails when the module is imported, with the class name;
- it is a ``dataclass_transform``, so type checkers see the generated ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from runner._contract.params import recipe_key

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        """Typing-only marker (``typing.dataclass_transform`` needs Python 3.11)."""
        return lambda decorated: decorated


T = TypeVar("T")
CheckMethod = TypeVar("CheckMethod", bound=Callable[..., "str | None"])

#: Set on a class by :func:`component`; the registry tells declarations from factories by it.
MARKER = "__runner_component__"
#: ``((method name, (key, ...)), ...)``: the class's ``@check`` methods, bases first.
CHECKS = "__runner_checks__"
_KEYS = "__runner_check_keys__"


def check(*keys: str) -> Callable[[CheckMethod], CheckMethod]:
    """Mark a method of a :func:`component` class as a rule over several parameters.

    The method takes only ``self`` and returns an error message, or None when the
    combination is fine. ``keys`` are the recipe keys it reads: errors are reported at the
    first one (its ``file:line`` and key path), and the rule is skipped while any of them
    has a problem of its own. Rules run after every per-parameter check, in
    ``runner recipe check`` with the recipe's other problems, and again before ``build``.
    """
    if not keys or not all(isinstance(key, str) and key for key in keys):
        raise TypeError(f"@runner.check needs the names of the parameters it reads, got {keys!r}")

    def mark(method: CheckMethod) -> CheckMethod:
        setattr(method, _KEYS, tuple(keys))
        return method

    return mark


@dataclass_transform(field_specifiers=(attrs.field,))
def component(cls: type[T]) -> type[T]:
    """Declare a component: ``cls`` becomes an attrs class whose fields are its recipe parameters.

    ``cls`` needs a ``build(self, ...)`` method that makes the component; it names the
    runtime arguments it wants (``ctx``, ``seed``, ``model``, ``run_dir``, ...) as
    parameters. Import torch and other heavy modules inside ``build``, so that declaring
    (and validating recipes) stays fast. Fields come from ``runner.param``; the class
    docstring is the component's documentation. See the module documentation.
    """
    if "__attrs_attrs__" not in vars(cls):
        cls = attrs.define(cls)
    where = f"@runner.component class {cls.__module__}.{cls.__qualname__}"
    if not callable(getattr(cls, "build", None)):
        raise TypeError(f"{where} needs a build(self, ...) method that makes the component")
    keys = {recipe_key(a) for a in attrs.fields(cast(Any, cls))}
    found: dict[str, tuple[str, ...]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            named = getattr(member, _KEYS, None)
            if named is not None:
                found[name] = named
    for name, named in found.items():
        unknown = [key for key in named if key not in keys]
        if unknown:
            raise TypeError(
                f"{where}: @runner.check method {name}() names {', '.join(map(repr, unknown))}, "
                f"which {'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                f"(parameters: {', '.join(sorted(keys)) or 'none'})"
            )
    setattr(cls, CHECKS, tuple(found.items()))
    setattr(cls, MARKER, True)
    return cls


def is_declaration(obj: object) -> bool:
    """Whether ``obj`` is a :func:`component` class (and not a factory)."""
    return isinstance(obj, type) and getattr(obj, MARKER, False) is True


def checks_of(cls: type) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The ``@check`` methods of a declaration: ``((method name, keys), ...)``."""
    found: tuple[tuple[str, tuple[str, ...]], ...] = getattr(cls, CHECKS, ())
    return found
