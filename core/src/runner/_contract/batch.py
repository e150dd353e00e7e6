"""The batch convention: what collates produce and tasks consume.

A batch is either a positional pair ``(inputs, targets)`` or a mapping of *named
fields* (:class:`Batch`): ``inputs`` and ``targets``, optionally ``lengths`` and
``attention_mask``, and whatever else a task wants. Hugging Face names are aliases:
a task reads ``inputs`` or ``input_ids``, ``targets`` or ``labels``.

Stdlib only: importing this module never imports torch.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypedDict

from runner._contract.errors import DataError

if TYPE_CHECKING:
    import torch

#: Keys a task reads its inputs from, in order of preference.
INPUT_KEYS: Final = ("inputs", "input_ids")
#: Keys a task reads its targets from, in order of preference.
TARGET_KEYS: Final = ("targets", "labels")


class Batch(TypedDict, total=False):
    """A batch of named fields, as the bundled collates produce and tasks read it.

    Every key is optional to the type; a task needs one key of each alias pair it uses.
    Collates may add any other field: tasks pass the extra fields a model's ``forward``
    declares by name (see :func:`forward_kwargs`).
    """

    inputs: torch.Tensor
    """The model input: features, or padded sequences ``(N, T, ...)``."""
    targets: torch.Tensor
    """What the loss compares the outputs with: class indices, regression targets."""
    lengths: torch.Tensor
    """int64 ``(N,)``: the real length of each padded sequence in ``inputs``."""
    attention_mask: torch.Tensor
    """``(N, T)``, true (or 1) at real positions and false (0) at padding."""
    input_ids: torch.Tensor
    """Hugging Face name of ``inputs`` (token ids)."""
    labels: torch.Tensor
    """Hugging Face name of ``targets``."""


def batch_fields(batch: Any) -> tuple[Any, Any, dict[str, Any]]:
    """``(inputs, targets, extras)`` of a batch that follows the convention.

    A pair ``(inputs, targets)`` (tuple or list) has no extras. A mapping gives its
    ``inputs`` (else ``input_ids``) and ``targets`` (else ``labels``), and every other
    field as ``extras`` (``lengths``, ``attention_mask``, ...). Anything else raises a
    one-line :class:`runner.DataError` saying what the batch was.
    """
    if isinstance(batch, Mapping):
        inputs_key = _first_key(batch, INPUT_KEYS)
        targets_key = _first_key(batch, TARGET_KEYS)
        if inputs_key is not None and targets_key is not None:
            extras = dict(batch)
            return extras.pop(inputs_key), extras.pop(targets_key), extras
    elif isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1], {}
    raise DataError(
        f"batch: expected (inputs, targets) or named fields with 'inputs' (or 'input_ids') and 'targets' "
        f"(or 'labels'), found {describe(batch)}; make the collate return one of them (see Batches in docs/data.md)"
    )


def batch_inputs(batch: Any) -> tuple[Any, dict[str, Any]]:
    """``(inputs, extras)`` of a batch that may lack targets (what prediction needs).

    Accepts everything :func:`batch_fields` does, and also named fields without
    ``targets``, a 1-tuple ``(inputs,)`` and a bare tensor. Targets are dropped; the
    other named fields are the extras (``lengths``, ``attention_mask``, ...).
    """
    if isinstance(batch, Mapping):
        inputs_key = _first_key(batch, INPUT_KEYS)
        if inputs_key is not None:
            extras = {k: v for k, v in batch.items() if k != inputs_key and k not in TARGET_KEYS}
            return batch[inputs_key], extras
    elif isinstance(batch, (tuple, list)) and len(batch) in (1, 2):
        return batch[0], {}
    elif hasattr(batch, "shape"):  # a bare tensor (or array): the inputs themselves
        return batch, {}
    raise DataError(
        f"batch: expected inputs, (inputs,), (inputs, targets) or named fields with 'inputs' (or 'input_ids'), "
        f"found {describe(batch)}; make the collate return one of them (see Batches in docs/data.md)"
    )


def _first_key(batch: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        if key in batch:
            return key
    return None


def describe(batch: Any) -> str:
    """A short description of a batch's structure, for error messages."""
    if isinstance(batch, Mapping):
        keys = ", ".join(repr(key) for key in list(batch)[:8])
        more = ", ..." if len(batch) > 8 else ""
        return f"a {type(batch).__name__} with keys {keys}{more}" if keys else f"an empty {type(batch).__name__}"
    if isinstance(batch, (tuple, list)):
        count = len(batch)
        return f"a {type(batch).__name__} of {count} item{'' if count == 1 else 's'}"
    shape = getattr(batch, "shape", None)
    return f"a {type(batch).__name__}" + (f" of shape {tuple(shape)}" if shape is not None else "")


def forward_kwargs(model: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``fields`` whose names the model's ``forward`` declares as parameters.

    A task calls ``model(inputs, **forward_kwargs(model, extras))``: a sequence model
    declaring ``lengths`` or ``attention_mask`` gets them, any other model is called
    with ``inputs`` alone. Wrappers whose ``forward`` takes only ``*args, **kwargs``
    (DistributedDataParallel, ``torch.compile``) are looked through to the wrapped
    module. A ``forward(x, **kwargs)`` receives no extras: name the fields you want.
    """
    if not fields:
        return {}
    accepted = _declared_parameters(type(_unwrap(model)))
    return {name: value for name, value in fields.items() if name in accepted}


def _unwrap(model: Any) -> Any:
    # Bounded: wrappers nest a few levels at most (compile around DDP around the model).
    for _ in range(8):
        if _declared_parameters(type(model)):  # first: a missing attribute costs microseconds on a Module
            return model
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if inner is None:
            return model
        model = inner
    return model


#: Per model class (weakly held: classes defined in tests or notebooks can go away).
_DECLARED: weakref.WeakKeyDictionary[type, frozenset[str]] = weakref.WeakKeyDictionary()


def _declared_parameters(cls: type) -> frozenset[str]:
    """Names ``cls.forward`` accepts by keyword (without ``self``), inspected once per class."""
    found = _DECLARED.get(cls)
    if found is None:
        found = _DECLARED[cls] = _inspect_forward(cls)
    return found


def _inspect_forward(cls: type) -> frozenset[str]:
    forward = getattr(cls, "forward", None)
    if forward is None:
        return frozenset()
    try:
        parameters = list(inspect.signature(forward).parameters.values())[1:]
    except (TypeError, ValueError):  # builtins and C extensions may have no signature
        return frozenset()
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in keyword)
