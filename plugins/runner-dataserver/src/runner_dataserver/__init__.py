"""runner-dataserver: async dataset servers (the ``async`` loader and ``runner serve-data``).

Importing this package (and its entry module :mod:`runner_dataserver.plugin`) never imports torch.
"""

from runner_dataserver._version import __version__

__all__ = ["__version__"]
