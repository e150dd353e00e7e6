"""Samplers in one place (private: plugins use ``runner.IndexSampler`` and friends).

- :mod:`runner._samplers.protocol` (torch-free): what makes a sampler resumable, seekable
  or a batch sampler, asked of a built sampler (the loader) or of a registered component
  before anything is built (recipe validation);
- :mod:`runner._samplers.index`: the resumable sampler classes (torch);
- :mod:`runner._samplers.builtin`: the ``random`` and ``sequential`` components.
"""
