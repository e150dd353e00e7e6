"""runner-datasets: the ``digits`` and ``synthetic`` datasets for runner.

Importing this package (and its entry module :mod:`runner_datasets.plugin`) never imports
torch, numpy or scikit-learn; the dataset modules do, when a recipe builds them.
"""

from runner_datasets._version import __version__

__all__ = ["__version__"]
