"""The plugin contract's version, and the range of it a plugin declares.

A plugin states which contract versions it was written for with a module attribute in
its entry module (or on the object its entry point names)::

    RUNNER_CONTRACT = ">=1.0,<2"

The range is a comma-separated list of ``OP VERSION`` clauses (``==``, ``!=``, ``>=``,
``<=``, ``>``, ``<``, ``~=``; ``==1.*`` works), with plain numeric versions. It is parsed
here rather than by ``packaging`` because it is checked on every command and must cost
next to nothing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

from runner._contract.registration import PluginInfo
from runner._version import CONTRACT_VERSION, __version__

_CLAUSE = re.compile(r"^\s*(==|!=|>=|<=|~=|>|<)\s*(\d+(?:\.\d+)*)(\.\*)?\s*$")
_COMPARE: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _pad(left: tuple[int, ...], right: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(left), len(right))
    return left + (0,) * (width - len(left)), right + (0,) * (width - len(right))


def _clause_holds(op: str, bound: tuple[int, ...], wildcard: bool, version: tuple[int, ...]) -> bool:
    if wildcard:  # ==1.* / !=1.*: compare the leading numbers only
        head = version[: len(bound)]
        same = head + (0,) * (len(bound) - len(head)) == bound
        return same if op == "==" else not same
    if op == "~=":  # ~=1.2: >=1.2 and ==1.*
        prefix = bound[:-1]
        return _clause_holds(">=", bound, False, version) and _clause_holds("==", prefix, True, version)
    return _COMPARE[op](*_pad(version, bound))


def in_range(declared: str, version: str = CONTRACT_VERSION) -> bool:
    """Whether ``version`` satisfies the range ``declared``; ValueError when it is no range."""
    if not declared.strip():
        raise ValueError("it is empty")
    current = _numbers(version)
    holds = True
    for clause in declared.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            raise ValueError(f"{clause.strip()!r} is not OP VERSION (OP one of == != >= <= > < ~=)")
        op, number, wildcard = match.group(1), _numbers(match.group(2)), bool(match.group(3))
        if wildcard and op not in ("==", "!="):
            raise ValueError(f"{clause.strip()!r}: only == and != take a .* suffix")
        if op == "~=" and len(number) < 2:
            raise ValueError(f"{clause.strip()!r}: ~= needs at least MAJOR.MINOR")
        holds = holds and _clause_holds(op, number, wildcard, current)
    return holds


def contract_problem(info: PluginInfo, declared: object, contract: str = CONTRACT_VERSION) -> str | None:
    """A problem line when ``info`` declares a contract range (``RUNNER_CONTRACT``) that
    is malformed or excludes ``contract``; None when it includes it."""
    if not isinstance(declared, str):
        return f"plugin {info}: RUNNER_CONTRACT must be a version range string such as '>=1.0,<2', got {declared!r}"
    try:
        if in_range(declared, contract):
            return None
    except ValueError as exc:
        return f"plugin {info}: RUNNER_CONTRACT {declared!r} is not a version range such as '>=1.0,<2': {exc}"
    return (
        f"plugin {info}: written for runner contract {declared} but runner-core {__version__} has contract "
        f"{contract}; install a {info.dist} release made for contract {contract}, or a runner-core in its range"
    )
