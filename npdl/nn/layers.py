"""Core layers: linear, embedding, dropout, normalisation, activations, flatten.

Weight layouts and names follow PyTorch (``Linear.weight`` is (out_features, in_features))
so state dicts move between the two.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

import npdl.functional as F
from npdl.core import random as _random
from npdl.core.tensor import Tensor
from npdl.nn import init
from npdl.nn.module import Module, Parameter
from npdl.registry import LAYERS
from npdl.schema import NonNegativeInt, PositiveFloat, PositiveInt, Probability


@LAYERS.register("linear")
class Linear(Module):
    """y = x W^T + b: (..., in_features) -> (..., out_features).

    ``in_features`` may be left out: the weight is then created on the first call from the
    input's last dimension (so configs need not repeat sizes the data already fixes).
    Init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias, as PyTorch does.
    """

    def __init__(self, out_features: PositiveInt, in_features: PositiveInt | None = None, bias: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.in_features, self.out_features, self.use_bias = in_features, out_features, bias
        self._rng = rng
        self._parameters["weight"] = None
        self._parameters["bias"] = None
        if in_features is not None:
            self._materialize(in_features)

    def _materialize(self, in_features: int, dtype=np.float32) -> None:
        rng = _random.resolve(self._rng)
        self.in_features = in_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(np.empty((self.out_features, in_features), dtype))
        init.uniform_(self.weight, -bound, bound, rng)
        if self.use_bias:
            self.bias = Parameter(np.empty(self.out_features, dtype))
            init.uniform_(self.bias, -bound, bound, rng)
        else:
            del self._parameters["bias"]

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None:
            self._materialize(x.shape[-1], x.dtype)
        return F.linear(x, self.weight, self.bias if self.use_bias else None)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.use_bias}"


@LAYERS.register("embedding")
class Embedding(Module):
    """Lookup table: integer ids (...) -> vectors (..., embedding_dim). Init N(0, 1) like PyTorch.

    ``sparse=True`` gives the weight a row-sparse gradient (only the rows a batch touched),
    which optimizers update lazily: essential for word2vec and large vocabularies.
    ``padding_idx``: that row starts at zero and receives no gradient.
    """

    def __init__(self, num_embeddings: PositiveInt, embedding_dim: PositiveInt, padding_idx: int | None = None,
                 sparse: bool = False, init_std: PositiveFloat = 1.0, rng: np.random.Generator | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"embedding: padding_idx {padding_idx} outside the table of {num_embeddings} rows")
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.sparse = sparse
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), np.float32))
        init.normal_(self.weight, 0.0, init_std, _random.resolve(rng))
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, ids) -> Tensor:
        return F.embedding(self.weight, ids, sparse=self.sparse, padding_idx=self.padding_idx)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (", sparse=True" if self.sparse else "")


@LAYERS.register("dropout")
class Dropout(Module):
    """Zero entries with probability p during training (scaled by 1/(1-p)); identity in eval."""

    def __init__(self, p: Probability = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


@LAYERS.register("layer_norm")
class LayerNorm(Module):
    """Normalise the trailing ``normalized_shape`` axes, then scale (weight) and shift (bias)."""

    def __init__(self, normalized_shape: PositiveInt | list[PositiveInt] | None = None, eps: PositiveFloat = 1e-5,
                 elementwise_affine: bool = True):
        super().__init__()
        self.eps, self.affine = eps, elementwise_affine
        self.normalized_shape = None
        self._parameters["weight"] = None
        self._parameters["bias"] = None
        if normalized_shape is not None:
            self._materialize(normalized_shape)

    def _materialize(self, shape, dtype=np.float32) -> None:
        self.normalized_shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if self.affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype))
        else:
            del self._parameters["weight"], self._parameters["bias"]

    def forward(self, x: Tensor) -> Tensor:
        if self.normalized_shape is None:
            self._materialize(x.shape[-1], x.dtype)
        w = self.weight if self.affine else None
        b = self.bias if self.affine else None
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


@LAYERS.register("relu")
class ReLU(Module):
    """max(x, 0)"""

    def forward(self, x):
        return F.relu(x)


@LAYERS.register("leaky_relu")
class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x"""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)


@LAYERS.register("gelu")
class GELU(Module):
    """x * Phi(x); approximate='tanh' for the faster tanh form."""

    def __init__(self, approximate: Literal["none", "tanh"] = "none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


@LAYERS.register("tanh")
class Tanh(Module):
    """tanh(x)"""

    def forward(self, x):
        return F.tanh(x)


@LAYERS.register("sigmoid")
class Sigmoid(Module):
    """1 / (1 + exp(-x))"""

    def forward(self, x):
        return F.sigmoid(x)


@LAYERS.register("softmax")
class Softmax(Module):
    """Softmax along ``axis``."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)


@LAYERS.register("log_softmax")
class LogSoftmax(Module):
    """Log-softmax along ``axis``."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.log_softmax(x, self.axis)


@LAYERS.register("flatten")
class Flatten(Module):
    """Merge axes start_axis..end_axis: (B, C, H, W) -> (B, C*H*W) by default."""

    def __init__(self, start_axis: NonNegativeInt = 1, end_axis: int = -1):
        super().__init__()
        self.start_axis, self.end_axis = start_axis, end_axis

    def forward(self, x):
        return x.flatten(self.start_axis, self.end_axis)


ACTIVATIONS = {"relu": ReLU, "gelu": GELU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU}


def activation(name: str) -> Module:
    """A fresh activation module by name (used by model families)."""
    if name == "gelu_tanh":
        return GELU("tanh")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{name}' (known: {', '.join(sorted(ACTIVATIONS))}, gelu_tanh)")
    return ACTIVATIONS[name]()
