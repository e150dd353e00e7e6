"""Entry module of the ``runner-hf`` plugin (entry point ``hf``): registers its components by name.

Imports none of torch, datasets, tokenizers or transformers: every component is a lazy
``module:attr`` reference to its declaration in :mod:`runner_hf.components`, so
``runner --help`` builds no class.
"""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl

_COMPONENTS = "runner_hf.components"


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register ``hf_dataset`` and ``tokenized``."""
    register("hf_dataset", f"{_COMPONENTS}:HFDataset")
    register("tokenized", f"{_COMPONENTS}:Tokenized")


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    """Register ``tokenize``."""
    register("tokenize", f"{_COMPONENTS}:Tokenize")


@hookimpl
def register_collates(register: RegisterComponent) -> None:
    """Register ``dynamic_padding``."""
    register("dynamic_padding", f"{_COMPONENTS}:DynamicPadding")


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``transformer``."""
    register("transformer", f"{_COMPONENTS}:Transformer")


@hookimpl
def register_tasks(register: RegisterComponent) -> None:
    """Register ``text_classification`` and ``causal_lm``."""
    register("text_classification", f"{_COMPONENTS}:TextClassification")
    register("causal_lm", f"{_COMPONENTS}:CausalLM")


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner hf`` (helpers: ``runner hf demo-data DIR``)."""
    register("hf", "runner_hf.cli:hf_group", help="runner-hf helpers: generate a small text dataset and tokenizer.")
