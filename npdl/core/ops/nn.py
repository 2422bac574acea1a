"""Fused neural-network primitives: softmax, log-softmax, dropout, layer norm (attention: attention_ops.py).

Each is one node in the graph with a hand-derived backward, because the composite of
elementwise ops is slower (many temporaries) or less stable (exp overflow). Each ``Function``
is followed by its public function (``npdl.functional.softmax``, ``x.softmax()``).
Random functions take an explicit ``rng`` (npdl's default generator when None).
"""
from __future__ import annotations

import numpy as np

from npdl.core import random as _random
from npdl.core.autograd import Function
from npdl.core.backend import get_array_module
from npdl.core.random import keep_mask
from npdl.core.tensor import Tensor, wrap


class Softmax(Function):
    """z = exp(x - max) / sum(exp(x - max)) along ``axis`` (stable for any x)."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.saved, ctx.axis = e, axis
        return e

    @staticmethod
    def backward(ctx, g):
        p = ctx.saved
        return p * (g - (g * p).sum(axis=ctx.axis, keepdims=True))


def softmax(x, axis: int = -1):
    """Stable softmax along ``axis``."""
    return Softmax.apply(x, axis=axis)


class LogSoftmax(Function):
    """z = x - logsumexp(x) along ``axis``."""

    @staticmethod
    def forward(ctx, x, axis=-1):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.saved, ctx.axis = out, axis
        return out

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        return g - xp.exp(ctx.saved) * g.sum(axis=ctx.axis, keepdims=True)


def log_softmax(x, axis: int = -1):
    """Stable log-softmax along ``axis``."""
    return LogSoftmax.apply(x, axis=axis)


class Dropout(Function):
    """Inverted dropout (Srivastava et al. 2014): zero each entry with probability p, scale the rest by 1/(1-p)."""

    @staticmethod
    def forward(ctx, x, p=0.5, rng=None):
        keep = keep_mask(x.shape, p, rng, get_array_module(x))
        ctx.saved = keep
        ctx.scale = x.dtype.type(1.0 / (1.0 - p))
        out = x * keep
        out *= ctx.scale
        return out

    @staticmethod
    def backward(ctx, g):
        out = g * ctx.saved
        out *= ctx.scale
        return out


def dropout(x, p: float = 0.5, training: bool = True, rng: np.random.Generator | None = None):
    """Zero entries with probability ``p`` and scale the rest by 1/(1-p); identity when not training.

    Raises:
        ValueError: p outside [0, 1].
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p, rng=_random.resolve(rng))


def standardize(x: np.ndarray, axes: tuple[int, ...], eps: float):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), shared by layer and batch norm.

    Returns (xhat, rstd, mean, var); the last three keep the reduced axes as size 1.
    """
    xp = np if type(x) is np.ndarray else get_array_module(x)
    mu = x.mean(axis=axes, keepdims=True)
    xhat = x - mu
    var = xp.mean(xhat * xhat, axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + x.dtype.type(eps))
    xhat *= rstd
    return xhat, rstd, mu, var


def standardize_backward(gxhat: np.ndarray, xhat: np.ndarray, rstd: np.ndarray, axes: tuple[int, ...]):
    """dL/dx of ``standardize`` from dL/dxhat: the mean and the variance depend on x too, hence
    dx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)) over ``axes``."""
    gx = gxhat - gxhat.mean(axis=axes, keepdims=True)
    gx -= xhat * (gxhat * xhat).mean(axis=axes, keepdims=True)
    gx *= rstd
    return gx


class LayerNorm(Function):
    """Layer normalisation over the last ``ndim_norm`` axes (Ba et al. 2016, arXiv:1607.06450).

    x: (..., *N); weight, bias: N-shaped or absent. y = (x - mean) / sqrt(var + eps) * weight + bias.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, ndim_norm=1, eps=1e-5):
        axes = tuple(range(x.ndim - ndim_norm, x.ndim))
        xhat, rstd, _, _ = standardize(x, axes, eps)
        ctx.saved = (xhat, rstd, weight)
        ctx.axes, ctx.has_bias = axes, bias is not None
        out = xhat * weight if weight is not None else xhat.copy()
        if bias is not None:
            out += bias
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved
        axes = ctx.axes
        needs = ctx.needs_input_grad
        gxhat = g * weight if weight is not None else g
        grads = [standardize_backward(gxhat, xhat, rstd, axes) if needs[0] else None]
        if weight is not None:
            lead = g.ndim - len(axes)
            grads.append((g * xhat).sum(axis=tuple(range(lead))) if needs[1] else None)
            if ctx.has_bias:
                grads.append(g.sum(axis=tuple(range(lead))) if needs[2] else None)
        return tuple(grads)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing ``normalized_shape`` axes, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"layer_norm: input trailing shape {x.shape[-len(shape):]} != normalized_shape {shape}")
    if weight is None and bias is not None:
        raise ValueError("layer_norm: a bias needs a weight")
    args = [a for a in (weight, bias) if a is not None]
    return LayerNorm.apply(x, *args, ndim_norm=len(shape), eps=eps)


def causal_mask(t_q: int, t_k: int) -> np.ndarray:
    """(t_q, t_k) boolean, True where query i may attend key j: j <= i + (t_k - t_q).

    The offset lets the last t_q queries of a longer sequence (decoding with a KV cache)
    see every cached key up to their own position.
    """
    return np.tri(t_q, t_k, k=t_k - t_q, dtype=bool)


def one_hot(indices, num_classes: int, dtype=np.float32) -> Tensor:
    """(...) integer indices -> (..., num_classes) one-hot, outside the graph."""
    xp = np if type(indices) is np.ndarray else get_array_module(indices)
    idx = xp.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise IndexError(f"one_hot: index out of range for {num_classes} classes")
    out = xp.zeros(idx.shape + (num_classes,), dtype=dtype)
    xp.put_along_axis(out, idx[..., None], 1, axis=-1)
    return wrap(out)
