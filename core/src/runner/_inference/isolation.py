"""Process-wide state a run changes, put back afterwards (``runner.fit``, ``runner.load``).

A run seeds the RNGs, may switch on deterministic algorithms, sets torch's thread count,
installs signal handlers while it trains, sets environment variables
(``CUBLAS_WORKSPACE_CONFIG``, a rank's ``MASTER_ADDR``...) and imports local plugin files
as ``runner_local_*`` modules. In a notebook or script that calls ``runner.fit`` twice,
the second run must not see the first one's choices, and the caller's own state must be
what it was: :func:`isolated` snapshots all of it and restores it on the way out.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: Modules the plugin manager creates for local plugin files (``-p file.py``).
LOCAL_MODULE_PREFIX = "runner_local_"
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


def _torch_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "default_dtype": torch.get_default_dtype(),
        "rng": torch.get_rng_state(),
        "grad": torch.is_grad_enabled(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def _restore_torch(state: dict[str, Any]) -> None:
    import torch

    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]
    torch.set_float32_matmul_precision(state["matmul_precision"])
    torch.set_default_dtype(state["default_dtype"])
    torch.set_rng_state(state["rng"])
    torch.set_grad_enabled(state["grad"])
    if "cuda_rng" in state:
        torch.cuda.set_rng_state_all(state["cuda_rng"])


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Restore RNGs (Python, numpy, torch), torch's thread count, deterministic and cuDNN
    flags, signal handlers, environment variables and ``runner_local_*``
    modules when the block ends (also when it raises)."""
    import numpy as np

    main = threading.current_thread() is threading.main_thread()
    handlers = {signum: signal.getsignal(signum) for signum in _SIGNALS} if main else {}
    environ = dict(os.environ)
    modules = {name: module for name, module in sys.modules.items() if name.startswith(LOCAL_MODULE_PREFIX)}
    python_rng = random.getstate()
    numpy_rng = np.random.get_state()
    torch_state = _torch_state()
    try:
        yield
    finally:
        _restore_torch(torch_state)
        np.random.set_state(numpy_rng)
        random.setstate(python_rng)
        for name in [name for name in sys.modules if name.startswith(LOCAL_MODULE_PREFIX)]:
            if name not in modules:
                del sys.modules[name]
        sys.modules.update(modules)
        for key in [key for key in os.environ if key not in environ]:
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        for signum, handler in handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
