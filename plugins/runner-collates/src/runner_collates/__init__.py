"""runner-collates: default, pad (mask + lengths) and stack_dict collate functions for runner.

Importing this package (and its entry module :mod:`runner_collates.plugin`) never imports torch.
"""

from runner_collates._version import __version__

__all__ = ["__version__"]
