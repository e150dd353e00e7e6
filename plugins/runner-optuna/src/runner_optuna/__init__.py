"""runner-optuna: the ``optuna`` sweeper for ``runner sweep`` (Optuna is imported only when it runs)."""

from runner_optuna._version import __version__

__all__ = ["__version__"]
