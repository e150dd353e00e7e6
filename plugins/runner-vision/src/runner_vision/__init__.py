"""runner-vision: image datasets, torchvision transforms v2 pipelines and torchvision models for runner.

Importing this package (and its entry module :mod:`runner_vision.plugin`) imports
neither torch nor torchvision.
"""

from runner_vision._version import __version__

__all__ = ["__version__"]
