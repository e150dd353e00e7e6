"""runner-tensorboard: a ``tensorboard`` logger for runner (``[[loggers]] name = "tensorboard"``).

Importing this package (and its entry module :mod:`runner_tensorboard.plugin`) never
imports torch or tensorboard; :mod:`runner_tensorboard.logger` does, when a run builds it.
"""

from runner_tensorboard._version import __version__

__all__ = ["__version__"]
