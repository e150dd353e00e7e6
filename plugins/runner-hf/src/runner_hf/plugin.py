"""Entry module of the ``runner-hf`` plugin (entry point ``hf``): registers its components by name.

Imports none of torch, datasets, tokenizers or transformers: factories and parameter
classes are lazy references.
"""

from __future__ import annotations

from runner import RegisterCommand, RegisterComponent, hookimpl

_PARAMS = "runner_hf.params"


@hookimpl
def register_datasets(register: RegisterComponent) -> None:
    """Register ``hf_dataset`` and ``tokenized``."""
    register(
        "hf_dataset",
        "runner_hf.data:hf_dataset",
        params=f"{_PARAMS}:HFDatasetParams",
        doc="Rows of a local Hugging Face dataset (parquet, JSON lines, CSV, Arrow, save_to_disk), memory-mapped.",
    )
    register(
        "tokenized",
        "runner_hf.data:tokenized",
        params=f"{_PARAMS}:TokenizedParams",
        doc="A tokenize step's cached output as {input_ids, labels} samples.",
    )


@hookimpl
def register_processors(register: RegisterComponent) -> None:
    """Register ``tokenize``."""
    register(
        "tokenize",
        "runner_hf.processor:Tokenize",
        params=f"{_PARAMS}:TokenizeParams",
        doc="Tokenize local text files with a local tokenizer into the processing cache.",
    )


@hookimpl
def register_collates(register: RegisterComponent) -> None:
    """Register ``dynamic_padding``."""
    register(
        "dynamic_padding",
        "runner_hf.collate:build",
        params=f"{_PARAMS}:DynamicPaddingParams",
        doc="Pad input_ids to the batch's longest sample, with attention_mask and labels.",
    )


@hookimpl
def register_models(register: RegisterComponent) -> None:
    """Register ``transformer``."""
    register(
        "transformer",
        "runner_hf.models:build",
        params=f"{_PARAMS}:TransformerParams",
        doc="A Hugging Face model from a local folder or a config.",
    )


@hookimpl
def register_tasks(register: RegisterComponent) -> None:
    """Register ``text_classification`` and ``causal_lm``."""
    register(
        "text_classification",
        "runner_hf.tasks:TextClassification",
        params=f"{_PARAMS}:TextClassificationParams",
        doc="Cross-entropy and accuracy on named-field batches.",
    )
    register(
        "causal_lm",
        "runner_hf.tasks:CausalLM",
        params=f"{_PARAMS}:CausalLMParams",
        doc="Next-token loss and perplexity on named-field batches.",
    )


@hookimpl
def register_commands(register: RegisterCommand) -> None:
    """Register ``runner hf`` (helpers: ``runner hf demo-data DIR``)."""
    register("hf", "runner_hf.cli:hf_group", help="runner-hf helpers: generate a small text dataset and tokenizer.")
