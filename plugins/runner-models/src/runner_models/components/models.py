"""The ``mlp``, ``cnn`` and ``rnn`` models. Sizes left unset come from the training dataset's ``meta``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from runner import at_least, check, component, param
from runner_models.components.checks import height_width, positive_sizes, probability

if TYPE_CHECKING:
    from runner import BuildContext
    from runner_models import cnn, mlp, rnn


@component
class MLP:
    """A multilayer perceptron; inputs with more than one feature dimension are flattened."""

    in_features: int | None = param(
        None, doc="Input features; default: meta in_features (or in_channels x image_size).", check=at_least(1)
    )
    hidden: list[int] = param([256], doc="Widths of the hidden layers; [] gives a linear model.", check=positive_sizes)
    num_classes: int | None = param(
        None, doc="Output logits for classification; default: meta num_classes.", check=at_least(1)
    )
    out_features: int | None = param(
        None, doc="Outputs for regression (instead of num_classes); default: meta out_features.", check=at_least(1)
    )
    activation: Literal["relu", "gelu", "tanh"] = param("relu", doc="Activation after each hidden layer.")
    dropout: float = param(0.0, doc="Dropout rate after each hidden activation.", check=probability)

    @check("num_classes", "out_features")
    def _one_output_size(self) -> str | None:
        if self.num_classes is not None and self.out_features is not None and self.num_classes != self.out_features:
            return f"set num_classes or out_features, not both ({self.num_classes} != {self.out_features})"
        return None

    def build(self, ctx: BuildContext | None = None) -> mlp.MLP:
        """An :class:`runner_models.mlp.MLP`; unset sizes come from the training dataset's meta (``ctx.meta``)."""
        from runner_models import mlp, sizes

        meta = sizes.meta_of(ctx)
        return mlp.MLP(
            in_features=sizes.flat_features("mlp", self.in_features, meta),
            hidden=list(self.hidden),
            out_features=sizes.outputs("mlp", self.num_classes, self.out_features, meta),
            activation=self.activation,
            dropout=self.dropout,
        )


@component
class CNN:
    """A small convolutional classifier: conv (+ batch norm) + ReLU + 2x2 max-pool blocks, then a linear head."""

    in_channels: int | None = param(None, doc="Input channels; default: meta in_channels.", check=at_least(1))
    image_size: list[int] | None = param(
        None, doc="Input [height, width]; default: meta image_size.", check=height_width
    )
    channels: list[int] = param([32, 64], doc="Output channels of each conv block.", check=positive_sizes)
    num_classes: int | None = param(None, doc="Output logits; default: meta num_classes.", check=at_least(1))
    kernel_size: int = param(3, doc="Convolution kernel size ('same' padding).", check=at_least(1))
    batch_norm: bool = param(True, doc="Batch normalisation after each convolution.")
    dropout: float = param(0.0, doc="Dropout rate before the linear head.", check=probability)

    def build(self, ctx: BuildContext | None = None) -> cnn.CNN:
        """A :class:`runner_models.cnn.CNN`; unset sizes come from the training dataset's meta (``ctx.meta``)."""
        from runner_models import cnn, sizes

        meta = sizes.meta_of(ctx)
        return cnn.CNN(
            in_channels=sizes.size("cnn", "in_channels", self.in_channels, meta),
            image_size=sizes.image_size("cnn", self.image_size, meta),
            channels=list(self.channels),
            num_classes=sizes.size("cnn", "num_classes", self.num_classes, meta),
            kernel_size=self.kernel_size,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
        )


@component
class RNN:
    """A GRU or LSTM over padded sequences (packed with their lengths: padding never changes the outputs),
    with a linear head on the final state."""

    vocab_size: int | None = param(
        None,
        doc="Token vocabulary: (N, T) integer inputs through an embedding; default: meta vocab_size.",
        check=at_least(1),
    )
    in_features: int | None = param(
        None,
        doc="Features per step: (N, T, in_features) float inputs through a linear projection (when no vocab_size); "
        "default: meta in_features.",
        check=at_least(1),
    )
    embed_dim: int = param(64, doc="Width of the embedding or projection fed to the RNN.", check=at_least(1))
    hidden_size: int = param(64, doc="Hidden state size of each RNN layer and direction.", check=at_least(1))
    num_layers: int = param(1, doc="Stacked RNN layers.", check=at_least(1))
    cell: Literal["gru", "lstm"] = param("gru", doc="Recurrent cell.")
    bidirectional: bool = param(False, doc="Also read each sequence backwards (the head sees both final states).")
    dropout: float = param(0.0, doc="Dropout between RNN layers and before the head.", check=probability)
    num_classes: int | None = param(
        None, doc="Output logits for classification; default: meta num_classes.", check=at_least(1)
    )
    out_features: int | None = param(
        None, doc="Outputs for regression (instead of num_classes); default: meta out_features.", check=at_least(1)
    )

    @check("num_classes", "out_features")
    def _one_output_size(self) -> str | None:
        if self.num_classes is not None and self.out_features is not None and self.num_classes != self.out_features:
            return f"set num_classes or out_features, not both ({self.num_classes} != {self.out_features})"
        return None

    def build(self, ctx: BuildContext | None = None) -> rnn.RNNClassifier:
        """A :class:`runner_models.rnn.RNNClassifier`; unset sizes come from the training dataset's meta."""
        from runner_models import rnn

        return rnn.build(
            vocab_size=self.vocab_size,
            in_features=self.in_features,
            embed_dim=self.embed_dim,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            cell=self.cell,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            num_classes=self.num_classes,
            out_features=self.out_features,
            ctx=ctx,
        )
