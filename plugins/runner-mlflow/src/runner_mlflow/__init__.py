"""runner-mlflow: an ``mlflow`` logger for runner (``[[loggers]] name = "mlflow"``).

Importing this package (and its entry module :mod:`runner_mlflow.plugin`) never imports
mlflow or torch; :mod:`runner_mlflow.logger` imports mlflow when a run builds it.
"""

from runner_mlflow._version import __version__

__all__ = ["__version__"]
