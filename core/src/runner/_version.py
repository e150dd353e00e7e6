__version__ = "0.1.0"

CONTRACT_VERSION = "1.0"
"""Version of the plugin contract: the public API (``runner``, ``runner.hookspecs``,
``runner.testing``) that plugins are written against. The minor number grows with
additions, the major number with changes that can break a plugin. A plugin declares the
range it works with as ``RUNNER_CONTRACT = ">=1.0,<2"`` in its entry module; every
command warns when the range excludes this version, and ``runner plugins doctor``
reports it."""
