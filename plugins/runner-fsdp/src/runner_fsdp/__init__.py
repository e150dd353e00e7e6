"""runner-fsdp: fully sharded data parallelism (FSDP2) for runner.

Importing this package (and its entry module :mod:`runner_fsdp.plugin`) never imports
torch; :mod:`runner_fsdp.backend` does, when a recipe with ``[run] backend = "fsdp"`` runs.
"""

from runner_fsdp._version import __version__

__all__ = ["__version__"]
