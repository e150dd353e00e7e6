"""Reading CIFAR's python pickle batches without unpickling arbitrary objects.

A pickle can name any importable callable and call it while loading (``os.system`` is the
classic), so a downloaded batch file is untrusted input. :func:`load` uses an unpickler
whose ``find_class`` resolves only numpy's array reconstruction (``_reconstruct``,
``ndarray``, ``dtype``, and ``_frombuffer`` of newer pickles); dicts, lists, bytes, str and
ints need no class at all (bytes written by Python 3 at protocol 2 go through a latin1
``_codecs.encode``, which is allowed for exactly that). Object arrays are refused too (their elements would be
arbitrary pickles). Anything else is a :class:`runner.DataError` naming the file and what
it asked for.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

import numpy as np

from runner import DataError


def _multiarray() -> Any:
    core = getattr(np, "_core", None)  # numpy >= 2; numpy.core is a deprecated alias there
    if core is None:  # pragma: no cover - numpy 1.x
        core = np.core
    return core


def _checked_dtype(*args: Any) -> np.dtype[Any]:
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed")
    return dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"array subtype {subtype!r} is not allowed")
    return _multiarray().multiarray._reconstruct(np.ndarray, shape, _checked_dtype(dtype))


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> Any:
    return _multiarray().numeric._frombuffer(buffer, _checked_dtype(dtype), shape, order)


def _latin1(text: Any, encoding: Any = "latin1") -> bytes:
    # How Python 3 writes bytes at pickle protocol 2: _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("only latin1 byte strings are allowed")
    return text.encode("latin1")


#: ``(module, name)`` pairs a batch file may refer to, and what they resolve to.
ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _checked_dtype,
    ("_codecs", "encode"): _latin1,
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        allowed = ALLOWED.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        return allowed


def loads_restricted(handle: IO[bytes]) -> Any:
    """Unpickle ``handle`` allowing only plain containers and numpy arrays.

    Python 2 strings are decoded as latin1 (as torchvision does for CIFAR), so keys are ``str``.
    """
    return _Restricted(handle, encoding="latin1").load()


def load(path: Path) -> Any:
    """The restricted unpickling of the file at ``path``; any refusal is a :class:`DataError`."""
    try:
        with path.open("rb") as handle:
            return loads_restricted(handle)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a CIFAR batch file this plugin will read: {exc}") from None
