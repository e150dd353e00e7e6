__version__ = "0.1.0"

#: Version of the plugin contract (``runner``, ``runner.hookspecs``, ``runner.testing``):
#: the minor number grows with additions, the major one with changes that can break plugins.
CONTRACT_VERSION = "1.0"
