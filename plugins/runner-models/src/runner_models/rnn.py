"""The ``rnn`` model: a GRU or LSTM sequence classifier (or regressor) over padded batches.

Integer tokens go through an embedding, float features through a linear projection.
Sequences are packed with their lengths, so padding never changes the result: the
output of a sequence is the same alone or in a batch padded to any length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from runner_models import sizes

if TYPE_CHECKING:
    from runner import BuildContext

CELLS: dict[str, type[nn.GRU] | type[nn.LSTM]] = {"gru": nn.GRU, "lstm": nn.LSTM}


class RNNClassifier(nn.Module):
    """Embedding (tokens) or projection (features), a GRU/LSTM, and a linear head on its final state.

    ``forward(x, lengths=None, attention_mask=None)`` takes ``(N, T)`` int64 tokens or
    ``(N, T, in_features)`` floats (``(N, T)`` floats when ``in_features`` is 1), padded
    on either side. With ``attention_mask`` (true at real positions) the real positions
    are read wherever they are; with ``lengths`` alone the padding must be on the right;
    with neither, every position is real. An empty sequence reads one padding position.
    """

    def __init__(
        self,
        *,
        vocab_size: int | None,
        in_features: int | None,
        out_features: int,
        embed_dim: int = 64,
        hidden_size: int = 64,
        num_layers: int = 1,
        cell: Literal["gru", "lstm"] = "gru",
        bidirectional: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (in_features is None):
            raise ValueError("rnn: give vocab_size (token inputs) or in_features (float features), exactly one")
        if cell not in CELLS:
            raise ValueError(f"rnn: cell must be one of {', '.join(CELLS)}, found {cell!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"rnn: dropout must be at least 0 and below 1, found {dropout}")
        self.vocab_size = vocab_size
        self.in_features = in_features
        self.embed: nn.Module = (
            nn.Embedding(vocab_size, embed_dim) if vocab_size is not None else nn.Linear(in_features or 1, embed_dim)
        )
        self.rnn = CELLS[cell](
            embed_dim,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,  # torch applies it between layers only
            bidirectional=bidirectional,
        )
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.directions, out_features)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.vocab_size is not None:
            if x.is_floating_point() or x.dim() != 2:
                raise ValueError(
                    f"rnn: expected (N, T) integer tokens, found {x.dtype} of shape {tuple(x.shape)}; "
                    "set in_features for float features"
                )
            return self.embed(x)  # type: ignore[no-any-return]
        if x.dim() == 2 and self.in_features == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(f"rnn: expected (N, T, {self.in_features}) features, found shape {tuple(x.shape)}")
        return self.embed(x.float())  # type: ignore[no-any-return]

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(N, out_features)`` outputs from the final state of each (unpadded) sequence."""
        embedded = self._embed(x)
        if attention_mask is not None:
            embedded, lengths = right_align(embedded, attention_mask.bool())
        if lengths is None:
            _, state = self.rnn(embedded)
        else:
            # pack_padded_sequence wants CPU lengths of at least 1.
            packed = pack_padded_sequence(embedded, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
            _, state = self.rnn(packed)
        hidden = state[0] if isinstance(state, tuple) else state  # LSTM: (h, c)
        # The last layer's final state of each direction: (N, hidden_size * directions).
        final = hidden[-self.directions :].transpose(0, 1).reshape(x.shape[0], -1)
        return self.head(self.dropout(final))  # type: ignore[no-any-return]


def right_align(embedded: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``embedded`` with each row's real positions moved to its front (in order), and their counts.

    Left padding (or any padding) becomes right padding, which packing expects.
    """
    lengths = mask.sum(1)
    if bool((mask[:, 1:] & ~mask[:, :-1]).any()):  # some real position follows padding
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)
        embedded = embedded.gather(1, order.unsqueeze(-1).expand_as(embedded))
    return embedded, lengths


def build(
    *,
    vocab_size: int | None = None,
    in_features: int | None = None,
    embed_dim: int = 64,
    hidden_size: int = 64,
    num_layers: int = 1,
    cell: Literal["gru", "lstm"] = "gru",
    bidirectional: bool = False,
    dropout: float = 0.0,
    num_classes: int | None = None,
    out_features: int | None = None,
    ctx: BuildContext | None = None,
) -> RNNClassifier:
    """An :class:`RNNClassifier`; unset sizes come from the training dataset's meta (``ctx.meta``).

    Tokens when ``vocab_size`` is set or in the meta, else float features of ``in_features``.
    """
    meta = sizes.meta_of(ctx)
    if vocab_size is not None and in_features is not None:
        raise ValueError("rnn: set vocab_size (token inputs) or in_features (float features), not both")
    if vocab_size is None and in_features is None:
        if meta.get("vocab_size") is not None:
            vocab_size = int(meta["vocab_size"])
        elif meta.get("in_features") is not None:
            in_features = int(meta["in_features"])
        else:
            raise sizes.missing("rnn", "vocab_size (token inputs) or in_features (float features)", meta)
    return RNNClassifier(
        vocab_size=vocab_size,
        in_features=in_features,
        out_features=sizes.outputs("rnn", num_classes, out_features, meta),
        embed_dim=embed_dim,
        hidden_size=hidden_size,
        num_layers=num_layers,
        cell=cell,
        bidirectional=bidirectional,
        dropout=dropout,
    )
