"""Keeping a misbehaving plugin from taking the command down with it.

- :class:`SigintWatch` tells a real Ctrl-C from a ``KeyboardInterrupt`` that plugin code
  raised itself while being imported: the first stops the command (exit 130), the second
  is that plugin's load failure, like ``sys.exit()`` at import.
- :data:`RESULT_CHECKS` describe what is wrong with a hook result the engine uses; the
  engine's hook facade (:mod:`runner._plugins.hooks`) applies them to every implementation,
  so a result of the wrong shape is a one-line PluginError naming its owner.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any


class SigintWatch:
    """While active, notes whether SIGINT was received (and still raises KeyboardInterrupt).

    Only installed over Python's default handler, in the main thread; elsewhere (or when
    someone else handles SIGINT) a KeyboardInterrupt is taken to be the user's.
    """

    def __init__(self) -> None:
        self.received = False
        self._installed = False
        self._previous: Any = None

    def __enter__(self) -> SigintWatch:
        import signal

        try:
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        except ValueError:  # not the main thread: signals are not delivered here
            pass
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        raise KeyboardInterrupt

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._installed:
            import signal

            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    @property
    def from_user(self) -> bool:
        """Whether a KeyboardInterrupt raised inside the block should count as Ctrl-C."""
        return self.received or self._previous is None


def failure_text(exc: BaseException) -> str:
    """``ImportError: ...`` for a load failure, with words for the exits that carry none."""
    if isinstance(exc, SystemExit):
        return f"SystemExit: it called sys.exit({exc.code!r}) while loading"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt: it raised KeyboardInterrupt while loading (no Ctrl-C was pressed)"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def describe(value: object) -> str:
    """``list [1, 2]``: a value's type and a short repr, for messages about wrong values."""
    import reprlib

    return f"{type(value).__name__} {reprlib.repr(value)}"


def _state_problem(result: Any) -> str | None:
    if result is None or (isinstance(result, dict) and all(isinstance(key, str) for key in result)):
        return None
    return f"{describe(result)}; get_state returns a dict with string keys, or None"


def _optimizers_problem(result: Any) -> str | None:
    if result is None:
        return None
    if (
        isinstance(result, (tuple, list))
        and len(result) == 2
        and all(isinstance(part, (tuple, list)) for part in result)
    ):
        return None
    return f"{describe(result)}; get_optimizers_schedulers returns (optimizers, schedulers), two lists, or None"


#: Names of alternative weights (``model.<name>.safetensors``): a file name part.
WEIGHTS_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
#: Weights names runner itself gives a meaning (``--checkpoint final|best|last``).
RESERVED_WEIGHTS = ("final", "best", "last")


def _weights_problem(result: Any) -> str | None:
    import re
    from collections.abc import Mapping

    if result is None:
        return None
    expected = "get_model_weights returns {name: state_dict} or None"
    if not isinstance(result, Mapping):
        return f"{describe(result)}; {expected}"
    for name, weights in result.items():
        if not isinstance(name, str) or not re.fullmatch(WEIGHTS_NAME, name):
            return f"the name {name!r}; names are letters, digits, '-' and '_' (the file is model.<name>.safetensors)"
        if name in RESERVED_WEIGHTS:
            return f"the name {name!r}, which runner reserves ({', '.join(RESERVED_WEIGHTS)}); choose another"
        if not isinstance(weights, Mapping) or not all(isinstance(key, str) for key in weights):
            return f"{describe(weights)} for {name!r}; {expected}"
    return None


#: Checks of the results the engine consumes, by hook: a problem text or None.
RESULT_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "get_state": _state_problem,
    "get_optimizers_schedulers": _optimizers_problem,
    "get_model_weights": _weights_problem,
}
