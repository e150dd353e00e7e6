"""After training: open a run directory's trained model, predict with it, export it, and
the Python API (``runner.fit``, ``runner.load``).

Torch is imported by the modules that need it, never by this package's ``__init__``.
"""
