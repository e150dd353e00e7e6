"""runner-wandb: a ``wandb`` logger for runner (``[[loggers]] name = "wandb"``).

Importing this package (and its entry module :mod:`runner_wandb.plugin`) never imports
wandb or torch; :mod:`runner_wandb.logger` imports wandb when a run builds it.
"""

from runner_wandb._version import __version__

__all__ = ["__version__"]
