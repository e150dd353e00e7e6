"""runner-ddp: multi-process and multi-node training on torch.distributed for runner.

Importing this package (and its entry module :mod:`runner_ddp.plugin`) never imports
torch; :mod:`runner_ddp.backend` does, when a recipe with ``[run] backend = "ddp"`` runs.
"""

from runner_ddp._version import __version__

__all__ = ["__version__"]
