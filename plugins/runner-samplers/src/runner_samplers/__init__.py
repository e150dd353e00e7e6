"""runner-samplers: resumable distributed, weighted and bucket_by_length samplers for runner.

Importing this package (and its entry module :mod:`runner_samplers.plugin`) never imports torch.
"""

from runner_samplers._version import __version__

__all__ = ["__version__"]
