"""The sampler protocol beyond iteration (torch-free): resumable, seekable, batched.

:class:`runner.Sampler` (in the contract) is what every sampler implements. A sampler is
*resumable* when it has ``state_dict()``/``load_state_dict(state)`` (required with
``[checkpoint]``), *seekable* when ``set_start(k)`` starts its next pass at position
``k`` without touching the data, and a *batch sampler* when it yields lists of indices.

The same questions are asked of built samplers (the loader, :func:`is_resumable`) and of
registered sampler components before anything is built (recipe validation,
:func:`declared_resumable`), so the list of methods lives here once.
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

from runner._contract.declaration import is_declaration

if TYPE_CHECKING:
    from runner._plugins.registry import Component

#: The state protocol a checkpointed run needs from its samplers.
RESUMABLE_METHODS = ("state_dict", "load_state_dict")

#: The resumable samplers the core and the bundled plugins register (named in errors).
RESUMABLE_EXAMPLES = "random, sequential, distributed, weighted, bucket_by_length"


def is_resumable(sampler: Any) -> bool:
    """Whether ``sampler`` (an object or a class) implements the state protocol."""
    return all(callable(getattr(sampler, name, None)) for name in RESUMABLE_METHODS)


def can_seek(sampler: Any) -> bool:
    """Whether ``sampler`` starts anywhere by index arithmetic (``set_start``)."""
    return callable(getattr(sampler, "set_start", None))


def is_batch_sampler(sampler: Any) -> bool:
    """Whether ``sampler`` yields batches of indices rather than single indices."""
    if getattr(sampler, "is_batch_sampler", False):
        return True
    torch = sys.modules.get("torch")  # a torch BatchSampler cannot exist before torch is imported
    return torch is not None and isinstance(sampler, torch.utils.data.BatchSampler)


def declared_resumable(component: Component) -> bool | None:
    """Whether a registered sampler is resumable, decided before anything is built.

    A sampler component declares it (torch-free) with ``__resumable__ = True`` or
    ``False`` on its ``@runner.component`` class, its parameter class or its factory; a
    factory that is a class is inspected for the state protocol. None when neither says:
    the built sampler is checked when the loader is built.
    """
    try:
        params_class = component.params_class
    except Exception:
        params_class = None  # an import failure is reported when the schema is read
    for holder in (params_class, component.factory_ref):
        flag = getattr(holder, "__resumable__", None)
        if isinstance(flag, bool):
            return flag
    try:
        factory: Any = component.factory
    except Exception:
        return None  # an import failure is reported when the sampler is built
    flag = getattr(factory, "__resumable__", None)
    if isinstance(flag, bool):
        return flag
    if is_declaration(factory):
        return None  # what its build() returns is known once built
    if inspect.isclass(factory):
        return is_resumable(factory)
    return None


def non_resumable_message(name: str, plugin: object) -> str:
    """The error for a sampler without the state protocol in a checkpointed run."""
    return (
        f"TypeError: sampler {name!r} ({plugin}) is not resumable: it has no "
        "state_dict()/load_state_dict(), so a checkpointed run could not resume mid-epoch; use a "
        f"resumable sampler ({RESUMABLE_EXAMPLES}) or derive yours from runner.IndexSampler"
    )
