"""Every component of runner-hf, each declared once: fields are the recipe parameters,
the docstring the documentation, ``build`` makes the object.

Imports none of torch, datasets, tokenizers or transformers, so ``runner recipe check``
validates recipes without them: each ``build`` imports the module that does the work
(:mod:`runner_hf.data`, :mod:`~runner_hf.processor`, :mod:`~runner_hf.collate`,
:mod:`~runner_hf.models`, :mod:`~runner_hf.tasks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from runner import at_least, check, component, param

if TYPE_CHECKING:
    from torch import nn

    from runner import BuildContext
    from runner_hf import collate, data, processor, tasks

FORMAT = Literal["auto", "parquet", "json", "csv", "arrow", "disk"]
FORMAT_DOC = "File format (auto: from the suffix; a folder is a save_to_disk folder)."
CACHE_DOC = "Where converted Arrow files go (default: the datasets cache, HF_DATASETS_CACHE)."

# -- datasets --------------------------------------------------------------------------------


@component
class HFDataset:
    """Rows of a local Hugging Face dataset (parquet, JSON lines, CSV, Arrow, save_to_disk), memory-mapped.

    Each sample is a dict of the row's columns; lists of numbers become tensors.
    """

    path: str = param(doc="Local file or folder (read from the working directory when relative).")
    file_format: FORMAT = param("auto", doc=FORMAT_DOC)
    split: str = param("train", doc="Split of a save_to_disk DatasetDict folder.")
    columns: list[str] | None = param(None, doc="Columns each sample holds (default: all).")
    label_column: str | None = param("label", doc="Column of class indices, for meta num_classes.")
    cache_dir: str | None = param(None, doc=CACHE_DOC)

    def build(self) -> data.HFRows:
        from runner_hf import data, tables

        table = tables.load_local(self.path, self.file_format, self.split, self.cache_dir)
        return data.HFRows(table, self.columns or [], self.label_column)


@component
class Tokenized:
    """A tokenize step's cached output as {input_ids, labels} samples.

    Each sample keeps its own length (a dynamic_padding collate pads the batch).
    """

    output: str = param(doc="The tokenize step's output name.")
    cache_dir: str | None = param(None, doc="The step's cache_dir, if it set one.")

    def build(self) -> data.Tokenized:
        from runner import load_output
        from runner_hf import data

        return data.Tokenized(load_output(self.output, self.cache_dir), self.output)


# -- processors ------------------------------------------------------------------------------


@component
class Tokenize:
    """Tokenize local text files with a local tokenizer into the processing cache.

    A [[process]] step: each row of local files (any format hf_dataset reads) becomes
    input_ids and length, plus its label when label_column is set.
    """

    tokenizer: str = param(doc="A tokenizers tokenizer.json, or a folder saved by save_pretrained holding one.")
    text_column: str = param("text", doc="Column holding the text.")
    text_pair_column: str | None = param(None, doc="Second text of a pair (e.g. NLI hypotheses).")
    label_column: str | None = param("label", doc="Column of integer labels, stored as label (none: no labels).")
    max_length: int = param(128, doc="Tokens kept per row (longer rows are truncated).", check=at_least(1))
    file_format: FORMAT = param("auto", doc=FORMAT_DOC)

    def build(self) -> processor.Tokenize:
        from runner_hf import processor

        return processor.Tokenize(
            self.tokenizer,
            text_column=self.text_column,
            text_pair_column=self.text_pair_column,
            label_column=self.label_column,
            max_length=self.max_length,
            file_format=self.file_format,
        )


# -- collates --------------------------------------------------------------------------------


@component
class DynamicPadding:
    """Pad input_ids to the batch's longest sample, with attention_mask and labels.

    The batch holds the Hugging Face named fields input_ids, attention_mask and labels.
    """

    pad_token_id: int | None = param(None, doc="Padding id (default: the dataset's meta pad_token_id, else 0).")
    max_length: int | None = param(None, doc="Truncate longer samples.", check=at_least(1))
    pad_to_multiple_of: int = param(1, doc="Round the padded length up to a multiple of this.", check=at_least(1))
    causal_lm: bool = param(False, doc="Labels = input_ids with padding set to -100 (language modelling).")

    def build(self, ctx: BuildContext | None = None) -> collate.DynamicPadding:
        from runner_hf import collate

        pad_token_id = self.pad_token_id
        if pad_token_id is None:
            found = (ctx.meta if ctx is not None else {}).get("pad_token_id")
            pad_token_id = int(found) if isinstance(found, int) else 0
        return collate.DynamicPadding(pad_token_id, self.max_length, self.pad_to_multiple_of, self.causal_lm)


# -- models ----------------------------------------------------------------------------------


def names_model_type(value: Any) -> str | None:
    """Constraint: a config table naming its ``model_type`` (None allowed)."""
    if value is None or isinstance(value.get("model_type"), str):
        return None
    return 'needs model_type (e.g. "bert", "gpt2")'


@component
class Transformer:
    """A Hugging Face model from a local folder or a config.

    Set exactly one: path loads a save_pretrained folder (local files only), config
    builds a randomly initialised model of any architecture transformers knows. The hub
    is never contacted.
    """

    head: Literal["sequence_classification", "causal_lm"] = param(
        "sequence_classification", doc="Which AutoModelFor... class."
    )
    path: str | None = param(None, doc="Local folder written by save_pretrained (config.json and weights).")
    config: dict[str, Any] | None = param(
        None,
        doc='Config of a new model: model_type ("bert", "gpt2", ...) and its config keys.',
        check=names_model_type,
    )
    tokenizer: str | None = param(None, doc="Tokenizer whose vocab_size and pad token id the config takes.")
    num_labels: int | None = param(
        None, doc="Classes of sequence_classification (default: the dataset's meta num_classes).", check=at_least(2)
    )

    @check("path", "config")
    def _one_source(self) -> str | None:
        if (self.path is None) != (self.config is None):
            return None
        which = "both are set" if self.path is not None else "neither is set"
        return f"set exactly one of path (a local save_pretrained folder) or config (a new model); {which}"

    def build(self, ctx: BuildContext | None = None) -> nn.Module:
        from runner_hf import models

        return models.transformer(
            head=self.head,
            path=self.path,
            config=self.config,
            tokenizer=self.tokenizer,
            num_labels=self.num_labels,
            ctx=ctx,
        )


# -- tasks -----------------------------------------------------------------------------------


@component
class TextClassification:
    """Cross-entropy and accuracy on named-field batches.

    Compares the batch's labels with the logits of the model's output (a Hugging Face
    model output, or a tensor); label smoothing applies to the training loss only.
    """

    label_smoothing: float = param(0.0, doc="Label smoothing of the training loss.", check=at_least(0))

    def build(self) -> tasks.TextClassification:
        from runner_hf import tasks

        return tasks.TextClassification(self.label_smoothing)


@component
class CausalLM:
    """Next-token loss and perplexity on named-field batches.

    Next-token cross-entropy averaged over the batch's predicted tokens (labels -100, the
    padding of a causal_lm collate, are ignored); perplexity in validation.
    """

    def build(self) -> tasks.CausalLM:
        from runner_hf import tasks

        return tasks.CausalLM()
