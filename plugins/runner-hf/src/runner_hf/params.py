"""Recipe parameters of runner-hf's components, as attrs classes (torch-free).

Field names and defaults match the factories' keyword arguments (a test checks it).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from runner import at_least, param

FORMAT = Literal["auto", "parquet", "json", "csv", "arrow", "disk"]
FORMAT_DOC = "File format (auto: from the suffix; a folder is a save_to_disk folder)."
CACHE_DOC = "Where converted Arrow files go (default: the datasets cache, HF_DATASETS_CACHE)."


@attrs.define
class HFDatasetParams:
    """Rows of a local parquet, JSON lines, CSV or Arrow file or save_to_disk folder, memory-mapped."""

    path: str = param(doc="Local file or folder (read from the working directory when relative).")
    file_format: FORMAT = param("auto", doc=FORMAT_DOC)
    split: str = param("train", doc="Split of a save_to_disk DatasetDict folder.")
    columns: list[str] | None = param(None, doc="Columns each sample holds (default: all).")
    label_column: str | None = param("label", doc="Column of class indices, for meta num_classes.")
    cache_dir: str | None = param(None, doc=CACHE_DOC)


@attrs.define
class TokenizedParams:
    """The output of a tokenize step as {input_ids, labels} samples of their own length."""

    output: str = param(doc="The tokenize step's output name.")
    cache_dir: str | None = param(None, doc="The step's cache_dir, if it set one.")


@attrs.define
class TokenizeParams:
    """Tokenize text columns of local files with a local tokenizer (a [[process]] step)."""

    tokenizer: str = param(doc="A tokenizers tokenizer.json, or a folder saved by save_pretrained holding one.")
    text_column: str = param("text", doc="Column holding the text.")
    text_pair_column: str | None = param(None, doc="Second text of a pair (e.g. NLI hypotheses).")
    label_column: str | None = param("label", doc="Column of integer labels, stored as label (none: no labels).")
    max_length: int = param(128, doc="Tokens kept per row (longer rows are truncated).", check=at_least(1))
    file_format: FORMAT = param("auto", doc=FORMAT_DOC)


@attrs.define
class DynamicPaddingParams:
    """Pad input_ids to the batch's longest sample; attention_mask and labels (named fields)."""

    pad_token_id: int | None = param(None, doc="Padding id (default: the dataset's meta pad_token_id, else 0).")
    max_length: int | None = param(None, doc="Truncate longer samples.", check=at_least(1))
    pad_to_multiple_of: int = param(1, doc="Round the padded length up to a multiple of this.", check=at_least(1))
    causal_lm: bool = param(False, doc="Labels = input_ids with padding set to -100 (language modelling).")


@attrs.define
class TransformerParams:
    """A Hugging Face model from a local save_pretrained folder or a config (randomly initialised)."""

    head: Literal["sequence_classification", "causal_lm"] = param(
        "sequence_classification", doc="Which AutoModelFor... class."
    )
    path: str | None = param(None, doc="Local folder written by save_pretrained (config.json and weights).")
    config: dict[str, Any] | None = param(
        None, doc='Config of a new model: model_type ("bert", "gpt2", ...) and its config keys.'
    )
    tokenizer: str | None = param(None, doc="Tokenizer whose vocab_size and pad token id the config takes.")
    num_labels: int | None = param(
        None, doc="Classes of sequence_classification (default: the dataset's meta num_classes).", check=at_least(2)
    )


@attrs.define
class TextClassificationParams:
    """Cross-entropy on a Hugging Face model's logits; accuracy."""

    label_smoothing: float = param(0.0, doc="Label smoothing of the training loss.", check=at_least(0))


@attrs.define
class CausalLMParams:
    """Next-token cross-entropy; perplexity in validation."""
