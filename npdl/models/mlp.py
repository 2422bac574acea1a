"""Multilayer perceptron: (B, ...) -> flatten -> [Linear -> (BatchNorm) -> act -> Dropout]* -> Linear."""
from __future__ import annotations

from typing import Literal

from npdl.nn.conv import BatchNorm
from npdl.nn.layers import Dropout, Flatten, Linear
from npdl.nn.layers import activation as make_activation
from npdl.nn.module import Module, Sequential
from npdl.registry import MODELS
from npdl.schema import PositiveInt, UnitInterval

Activation = Literal["relu", "gelu", "gelu_tanh", "tanh", "sigmoid", "leaky_relu"]


@MODELS.register("mlp")
class MLP(Module):
    """Multilayer perceptron: (B, in_features) (or any (B, ...), flattened) -> (B, num_classes).

    Give the full ``sizes`` ([784, 256, 10]) or just ``hidden`` ([256]) and let the data
    supply ``in_features`` and ``num_classes``.
    """

    def __init__(self, sizes: list[PositiveInt] | None = None, hidden: list[PositiveInt] | None = None,
                 in_features: PositiveInt | None = None, num_classes: PositiveInt | None = None,
                 activation: Activation = "relu", dropout: UnitInterval = 0.0, batch_norm: bool = False):
        super().__init__()
        if sizes is None:
            if hidden is None or num_classes is None:
                raise ValueError("mlp: give `sizes` (e.g. [784, 256, 10]) or `hidden` with data that has classes")
            sizes = [in_features] + list(hidden) + [num_classes]
        elif len(sizes) < 2:
            raise ValueError(f"mlp: sizes needs at least input and output sizes, got {sizes}")
        elif in_features is not None and sizes[0] is not None and sizes[0] != in_features:
            raise ValueError(f"mlp: sizes[0] is {sizes[0]} but the data has {in_features} input features")
        elif num_classes is not None and sizes[-1] != num_classes:
            raise ValueError(f"mlp: sizes[-1] is {sizes[-1]} but the data has {num_classes} classes")
        self.sizes = list(sizes)
        layers: list[Module] = [Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_out, in_features=n_in))
            if i < len(sizes) - 2:
                if batch_norm:
                    layers.append(BatchNorm(n_out))
                layers.append(make_activation(activation))
                if dropout:
                    layers.append(Dropout(dropout))
        self.layers = Sequential(*layers)

    def forward(self, x):
        return self.layers(x)

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}"
