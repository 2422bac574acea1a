"""Reductions over ``axis`` (int, tuple or None) with ``keepdims``, NumPy-style.

Each ``Function`` is followed by its public function (``npdl.sum``, ``x.sum()``). They are named
like NumPy's (``sum``, ``max``, ``min``), so this module reaches Python's own via ``builtins``.
"""
from __future__ import annotations

import builtins

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module


def _axes(axis, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim for a in axis)) if ndim else ()


def _keep(g: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Reinsert reduced axes so ``g`` broadcasts against the input."""
    xp = np if type(g) is np.ndarray else get_array_module(g)
    return g if keepdims or not axes else xp.expand_dims(g, axes)


def _spread(g: np.ndarray, shape: tuple[int, ...], keep_shape: tuple[int, ...]) -> np.ndarray:
    """``g`` (reduced) copied out to the input's ``shape``."""
    xp = np if type(g) is np.ndarray else get_array_module(g)
    out = xp.empty(shape, dtype=g.dtype)
    out[...] = g.reshape(keep_shape)
    return out


def _keep_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """z = sum of x over axis"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        axes = _axes(axis, x.ndim)
        ctx.shape, ctx.keep_shape = x.shape, _keep_shape(x.shape, axes)
        return xp.sum(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return _spread(g, ctx.shape, ctx.keep_shape)


def sum(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Sum.apply(x, axis=axis, keepdims=keepdims)


class Mean(Function):
    """z = mean of x over axis"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        axes = _axes(axis, x.ndim)
        ctx.shape, ctx.keep_shape = x.shape, _keep_shape(x.shape, axes)
        ctx.count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        return xp.mean(x, axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return _spread(g / g.dtype.type(ctx.count), ctx.shape, ctx.keep_shape)


def mean(x, axis=None, keepdims: bool = False):
    return Mean.apply(x, axis=axis, keepdims=keepdims)


class _Extreme(Function):
    """Shared max/min: the gradient goes to the extreme entries, split evenly on ties.
    Subclasses set ``reduce``."""

    @classmethod
    def forward(cls, ctx, x, axis=None, keepdims=False):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        if x.size == 0:
            raise ValueError(f"{cls.__name__.lower()}() of an empty tensor")
        ctx.axes = _axes(axis, x.ndim)
        ctx.keepdims = keepdims
        out = getattr(xp, cls.reduce)(x, axis=ctx.axes, keepdims=True)
        ctx.saved = (x, out)
        return out if keepdims else xp.squeeze(out, axis=ctx.axes)

    @staticmethod
    def backward(ctx, g):
        x, out = ctx.saved
        hit = x == out
        count = hit.sum(axis=ctx.axes, keepdims=True)
        return hit * (_keep(g, ctx.axes, ctx.keepdims) / count).astype(g.dtype)


class Max(_Extreme):
    """z = max of x over axis (values)"""

    reduce = "max"   # the name of the array module's reduction


def max(x, axis=None, keepdims: bool = False):  # noqa: A001
    """Maximum values (not indices; see ``argmax``)."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


class Min(_Extreme):
    """z = min of x over axis (values)"""

    reduce = "min"


def min(x, axis=None, keepdims: bool = False):  # noqa: A001
    return Min.apply(x, axis=axis, keepdims=keepdims)


class Var(Function):
    """z = sum((x - mean)^2) / (n - ddof) over axis"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False, ddof=0):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        axes = _axes(axis, x.ndim)
        n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
        centered = x - x.mean(axis=axes, keepdims=True)
        ctx.saved = centered
        ctx.axes, ctx.keepdims, ctx.denom = axes, keepdims, builtins.max(n - ddof, 1)
        return xp.sum(centered * centered, axis=axes, keepdims=keepdims) / x.dtype.type(ctx.denom)

    @staticmethod
    def backward(ctx, g):
        centered = ctx.saved
        scale = g.dtype.type(2.0 / ctx.denom)
        return _keep(g, ctx.axes, ctx.keepdims) * centered * scale


def var(x, axis=None, keepdims: bool = False, ddof: int = 0):
    """Variance; ``ddof=0`` like NumPy (PyTorch's default is ``ddof=1``)."""
    return Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


class LogSumExp(Function):
    """z = log(sum(exp(x))) over axis, computed as m + log(sum(exp(x - m)))"""

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        axes = _axes(axis, x.ndim)
        m = xp.max(x, axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        e = xp.exp(x - m)
        s = e.sum(axis=axes, keepdims=True)
        out = xp.log(s) + m
        e /= s                                     # softmax, in place: the gradient's factor
        ctx.saved = e
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else xp.squeeze(out, axis=axes)

    @staticmethod
    def backward(ctx, g):
        return _keep(g, ctx.axes, ctx.keepdims) * ctx.saved


def logsumexp(x, axis=None, keepdims: bool = False):
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)
