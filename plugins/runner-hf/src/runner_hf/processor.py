"""The ``tokenize`` processor: local text files to token ids, for a ``[[process]]`` step.

Each shard's files are read with :func:`runner_hf.tables.load_local` and tokenized with a
local tokenizer (a ``tokenizer.json`` file of the tokenizers library, or a folder saved by
``save_pretrained``). Rows are stored padded to ``max_length`` with their ``length`` (the
cache holds rectangular arrays); the ``tokenized`` dataset cuts them back and a
``dynamic_padding`` collate pads each batch to its own longest sample.

The cache key covers the processor's parameters, so the tokenizer's *path*, not its
content: after changing a tokenizer file in place, change ``cache_dir`` or delete the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runner import DataError
from runner_hf.tables import Format, load_local


def load_tokenizer(path: str) -> Any:
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json`` file or a folder holding one."""
    from tokenizers import Tokenizer

    location = Path(path).expanduser()
    file = location / "tokenizer.json" if location.is_dir() else location
    if not file.is_file():
        raise DataError(
            f"tokenizer: {file} does not exist (a tokenizers tokenizer.json, or a folder saved by save_pretrained)"
        )
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:
        raise DataError(f"tokenizer: {file}: cannot load: {exc}") from None


class Tokenize:
    """``process(files) -> {"input_ids", "length"[, "label"]}``; see the module docstring."""

    def __init__(
        self,
        tokenizer: str,
        text_column: str = "text",
        text_pair_column: str | None = None,
        label_column: str | None = "label",
        max_length: int = 128,
        file_format: Format = "auto",
    ) -> None:
        self.tokenizer_path = tokenizer
        self.tokenizer = load_tokenizer(tokenizer)
        self.text_column, self.text_pair_column, self.label_column = text_column, text_pair_column, label_column
        self.max_length = max_length
        self.file_format: Format = file_format

    def _columns(self, table: Any, source: str) -> dict[str, list[Any]]:
        wanted = [c for c in (self.text_column, self.text_pair_column, self.label_column) if c]
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise DataError(f"{source}: no column {missing}; it has {', '.join(table.column_names)}")
        return {c: table[c] for c in wanted}

    def process(self, inputs: list[str]) -> dict[str, np.ndarray]:
        """Tokenize every row of every file in ``inputs``, in order."""
        ids: list[list[int]] = []
        labels: list[int] = []
        for source in inputs:
            columns = self._columns(load_local(source, self.file_format), source)
            texts = columns[self.text_column]
            if self.text_pair_column:
                encoded = self.tokenizer.encode_batch(list(zip(texts, columns[self.text_pair_column], strict=True)))
            else:
                encoded = self.tokenizer.encode_batch(texts)
            ids += [e.ids[: self.max_length] for e in encoded]
            if self.label_column:
                labels += [int(v) for v in columns[self.label_column]]
        matrix = np.zeros((len(ids), self.max_length), dtype=np.int32)
        for row, tokens in enumerate(ids):
            matrix[row, : len(tokens)] = tokens
        out = {"input_ids": matrix, "length": np.array([len(t) for t in ids], dtype=np.int64)}
        if self.label_column:
            out["label"] = np.array(labels, dtype=np.int64)
        return out

    def analyze(self, data: dict[str, Any]) -> dict[str, Any]:
        """Rows, token counts and labels of the merged output."""
        lengths = data["length"].float()
        stats: dict[str, Any] = {
            "rows": int(lengths.numel()),
            "mean_length": round(float(lengths.mean()), 2) if lengths.numel() else 0.0,
            "max_length": int(lengths.max()) if lengths.numel() else 0,
            "truncated": int((lengths >= self.max_length).sum()),
            "vocab_size": int(self.tokenizer.get_vocab_size()),
        }
        if "label" in data:
            stats["label_counts"] = {
                str(k): int(v) for k, v in zip(*np.unique(data["label"].numpy(), return_counts=True), strict=True)
            }
        return stats
