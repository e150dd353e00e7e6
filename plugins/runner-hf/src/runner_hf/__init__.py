"""runner-hf: Hugging Face datasets, tokenizers and transformers for runner.

Importing this package (and its entry module :mod:`runner_hf.plugin`) imports none of
torch, datasets, tokenizers or transformers.
"""

from runner_hf._version import __version__

__all__ = ["__version__"]
