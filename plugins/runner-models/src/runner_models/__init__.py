"""runner-models: models, tasks, optimizers and learning-rate schedulers for runner.

Importing this package (and its entry module :mod:`runner_models.plugin`) never imports
torch; the component modules do, when a recipe builds them.
"""

from runner_models._version import __version__

__all__ = ["__version__"]
