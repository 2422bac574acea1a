"""Convolution, pooling and batch normalisation layers over (N, C, H, W) / (N, C, ...)."""
from __future__ import annotations

import math

import numpy as np

from npdl.core import random as _random
from npdl.core.backend import get_array_module
from npdl.core.ops import conv as _conv
from npdl.core.ops import pool as _pool
from npdl.core.tensor import Tensor
from npdl.nn import init
from npdl.nn.module import Module, Parameter
from npdl.registry import LAYERS
from npdl.schema import PositiveFloat, PositiveInt, NonNegativeInt, Probability

IntOrPair = PositiveInt | tuple[PositiveInt, PositiveInt]
IntOrPairOrZero = NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt]


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


@LAYERS.register("conv2d")
class Conv2d(Module):
    """2-D convolution (N, C_in, H, W) -> (N, out_channels, OH, OW); weight (out, in, kh, kw) as PyTorch.

    ``in_channels`` may be left out and inferred on the first call. Init: kaiming-uniform
    with a = sqrt(5) and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default.
    """

    uses_own_threads = True   # the batch's parts run on npdl's threads (npdl.core.ops.conv)

    def __init__(self, out_channels: PositiveInt, kernel_size: IntOrPair, in_channels: PositiveInt | None = None,
                 stride: IntOrPair = 1, padding: IntOrPairOrZero = 0, dilation: IntOrPair = 1, bias: bool = True,
                 rng: np.random.Generator | None = None):
        super().__init__()
        self.out_channels, self.in_channels = out_channels, in_channels
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.use_bias, self._rng = bias, rng
        self._parameters["weight"] = None
        self._parameters["bias"] = None
        if in_channels is not None:
            self._materialize(in_channels)

    def _materialize(self, in_channels: int, dtype=np.float32) -> None:
        rng = _random.resolve(self._rng)
        self.in_channels = in_channels
        self.weight = Parameter(np.empty((self.out_channels, in_channels) + self.kernel_size, dtype))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.use_bias:
            bound = 1.0 / math.sqrt(init.fans(self.weight.shape)[0])
            self.bias = Parameter(np.empty(self.out_channels, dtype))
            init.uniform_(self.bias, -bound, bound, rng)
        else:
            del self._parameters["bias"]

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"conv2d expects (N, C, H, W) input, got shape {x.shape}")
        if self.weight is None:
            self._materialize(x.shape[1], x.dtype)
        args = (x, self.weight) + ((self.bias,) if self.use_bias else ())
        return _conv.Conv2d.apply(*args, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


@LAYERS.register("max_pool2d")
class MaxPool2d(Module):
    """Max over kernel_size windows (stride defaults to kernel_size)."""

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPairOrZero = 0,
                 dilation: IntOrPair = 1):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding, self.dilation = _pair(padding), _pair(dilation)

    def forward(self, x: Tensor) -> Tensor:
        return _pool.MaxPool2d.apply(x, kernel=self.kernel_size, stride=self.stride, padding=self.padding,
                                     dilation=self.dilation)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


@LAYERS.register("avg_pool2d")
class AvgPool2d(Module):
    """Mean over kernel_size windows (stride defaults to kernel_size)."""

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None, padding: IntOrPairOrZero = 0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)

    def forward(self, x: Tensor) -> Tensor:
        return _pool.AvgPool2d.apply(x, kernel=self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


@LAYERS.register("batch_norm")
class BatchNorm(Module):
    """Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W) input.

    Training: normalise with the batch statistics and update running averages
    (running = (1 - momentum) * running + momentum * batch, unbiased variance, as PyTorch).
    Eval: normalise with the running statistics. ``num_features`` may be inferred.
    """

    def __init__(self, num_features: PositiveInt | None = None, eps: PositiveFloat = 1e-5,
                 momentum: Probability = 0.1, affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        self.eps, self.momentum, self.affine, self.track = eps, momentum, affine, track_running_stats
        self.num_features = None
        self._parameters["weight"] = None
        self._parameters["bias"] = None
        self._buffers["running_mean"] = None
        self._buffers["running_var"] = None
        self._buffers["num_batches_tracked"] = None
        if num_features is not None:
            self._materialize(num_features)

    def _materialize(self, c: int, dtype=np.float32) -> None:
        self.num_features = c
        if self.affine:
            self.weight = Parameter(np.ones(c, dtype))
            self.bias = Parameter(np.zeros(c, dtype))
        else:
            del self._parameters["weight"], self._parameters["bias"]
        if self.track:
            self.running_mean = np.zeros(c, dtype)
            self.running_var = np.ones(c, dtype)
            self.num_batches_tracked = np.zeros((), np.int64)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"batch_norm expects (N, C, ...) input, got shape {x.shape}")
        if self.num_features is None:
            self._materialize(x.shape[1], x.dtype)
        affine = (self.weight, self.bias) if self.affine else ()
        if self.training or not self.track:
            stats = {}
            out = _conv.BatchNorm.apply(x, *affine, eps=self.eps, stats=stats)
            if self.training and self.track:
                n = x.size // x.shape[1]
                m = self.momentum
                unbiased = stats["var"] * (n / max(n - 1, 1))
                self.running_mean[...] = (1 - m) * self.running_mean + m * stats["mean"]
                self.running_var[...] = (1 - m) * self.running_var + m * unbiased
                self.num_batches_tracked[...] += 1
            return out
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        scale = (1.0 / get_array_module(self.running_var).sqrt(self.running_var + self.eps)).astype(x.dtype)
        out = (x - self.running_mean.astype(x.dtype).reshape(shape)) * scale.reshape(shape)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


LAYERS.register("batch_norm1d")(BatchNorm)
LAYERS.register("batch_norm2d")(BatchNorm)
