"""Parameters of the ``mlp``, ``cnn`` and ``rnn`` models. Sizes left unset come from the training
dataset's ``meta``."""

from __future__ import annotations

from typing import Literal

import attrs

from runner import at_least, param
from runner_models.params.checks import height_width, positive_sizes, probability


@attrs.define
class MLPParams:
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


@attrs.define
class CNNParams:
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


@attrs.define
class RNNParams:
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
