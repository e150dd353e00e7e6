"""runner-callbacks: training callbacks for runner (``[[callbacks]] name = "early_stopping"``, ...).

Importing this package (and its entry module :mod:`runner_callbacks.plugin`) never imports
torch; each callback's module does, when a run builds it.
"""

from runner_callbacks._version import __version__

__all__ = ["__version__"]
