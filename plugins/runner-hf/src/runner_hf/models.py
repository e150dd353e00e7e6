"""The ``transformer`` model: a Hugging Face model from a local folder or from a config.

``path`` loads a folder written by ``save_pretrained`` (config.json plus weights) with
``local_files_only``; ``config`` builds a randomly initialised model of any architecture
transformers knows (``{ model_type = "bert", hidden_size = 32, ... }``). ``num_labels``
comes from ``ctx.meta["num_classes"]`` and ``vocab_size``/``pad_token_id`` from
``tokenizer`` when given. The hub is never contacted (see :mod:`runner_hf.offline`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch import nn

from runner import BuildContext, DataError
from runner_hf.offline import transformers

Head = Literal["sequence_classification", "causal_lm"]
AUTO = {"sequence_classification": "AutoModelForSequenceClassification", "causal_lm": "AutoModelForCausalLM"}


def _tokenizer_settings(tokenizer: str | None) -> dict[str, Any]:
    if not tokenizer:
        return {}
    from runner_hf.processor import load_tokenizer

    loaded = load_tokenizer(tokenizer)
    settings: dict[str, Any] = {"vocab_size": int(loaded.get_vocab_size())}
    for token in ("[PAD]", "<pad>", "<|pad|>"):
        found = loaded.token_to_id(token)
        if found is not None:
            settings["pad_token_id"] = int(found)
            break
    return settings


def transformer(
    *,
    head: Head,
    path: str | None,
    config: dict[str, Any] | None,
    tokenizer: str | None,
    num_labels: int | None,
    ctx: BuildContext | None,
) -> nn.Module:
    """The model from ``path``, else from ``config`` (declared by :class:`runner_hf.components.Transformer`,
    whose rule makes sure exactly one is set); see the module docstring."""
    hf = transformers()
    auto = getattr(hf, AUTO[head])
    settings = _tokenizer_settings(tokenizer)
    if head == "sequence_classification":
        labels = num_labels or (ctx.meta if ctx is not None else {}).get("num_classes")
        if not isinstance(labels, int):
            raise DataError("transformer: set num_labels (the training dataset's meta gives no num_classes)")
        settings["num_labels"] = labels
    if path is not None:
        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise DataError(f"transformer: {folder} has no config.json (a folder written by save_pretrained)")
        try:
            return auto.from_pretrained(str(folder), local_files_only=True, **settings)  # type: ignore[no-any-return]
        except (OSError, ValueError) as exc:
            raise DataError(f"transformer: cannot load {folder}: {exc}") from None
    table = dict(config or {})
    model_type = table.pop("model_type", None)
    if not isinstance(model_type, str):
        raise DataError('transformer: config needs model_type (e.g. "bert", "gpt2")')
    try:
        built = hf.AutoConfig.for_model(model_type, **{**table, **settings})
        return auto.from_config(built)  # type: ignore[no-any-return]
    except ValueError as exc:  # unknown model_type, inconsistent sizes
        raise DataError(f"transformer: config: {exc}") from None
