"""``[run] compile``: the model compiled in place, without torch's own deprecation notices."""

from __future__ import annotations

import warnings

import torch

# torch.compile imports torch._inductor on first use, which imports torch.utils.mkldnn, whose
# classes use torch.jit.script_method: torch 2.13 then warns that script_method is deprecated.
# The warning is torch's about its own code, not the user's to act on, and under
# `-W error` (pytest's filterwarnings = error, as runner_tester users have) it failed the run.
_TORCH_OWN = r"`torch\.jit\.script_method` is deprecated"


def compile_in_place(model: torch.nn.Module, mode: str | None) -> None:
    """``model.compile(mode=mode)``: in place (``Module.compile``), so state dict keys,
    checkpoints and the backend's wrapping stay those of the uncompiled module."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCH_OWN, category=DeprecationWarning)
        model.compile(mode=mode)
