"""Tensor functions at package level (``npdl.exp(x)``, ``npdl.concat([...])``, ...).

Each mirrors a Tensor method or wraps a primitive whose inputs are several tensors.
"""
from __future__ import annotations

import numpy as np

from npdl.core.ops import elementwise as _ew
from npdl.core.ops import matmul as _mm
from npdl.core.ops import movement as _mv
from npdl.core.ops import reductions as _red
from npdl.core.tensor import Tensor


def _t(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def exp(x):
    return _ew.Exp.apply(x)


def log(x):
    return _ew.Log.apply(x)


def sqrt(x):
    return _ew.Sqrt.apply(x)


def abs(x):  # noqa: A001 - mirrors numpy.abs
    return _ew.Abs.apply(x)


def tanh(x):
    return _ew.Tanh.apply(x)


def sigmoid(x):
    return _ew.Sigmoid.apply(x)


def relu(x):
    return _ew.Relu.apply(x)


def clip(x, min=None, max=None):  # noqa: A002
    return _ew.Clip.apply(x, lo=min, hi=max)


def maximum(a, b):
    """Elementwise max of two tensors (or a tensor and a constant)."""
    return _ew.Maximum.apply(a, b)


def minimum(a, b):
    return _ew.Minimum.apply(a, b)


def where(cond, a, b):
    """``a`` where ``cond`` is True, else ``b``; ``cond`` is boolean and carries no gradient."""
    c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if c.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got {c.dtype}")
    return _ew.Where.apply(c, a, b)


def matmul(a, b):
    return _mm.MatMul.apply(a, b)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    return _red.Sum.apply(x, axis=axis, keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return _red.Mean.apply(x, axis=axis, keepdims=keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _red.Max.apply(x, axis=axis, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return _red.Min.apply(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims=False, ddof=0):
    return _red.Var.apply(x, axis=axis, keepdims=keepdims, ddof=ddof)


def logsumexp(x, axis=None, keepdims=False):
    return _red.LogSumExp.apply(x, axis=axis, keepdims=keepdims)


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    return _mv.Concat.apply(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    return _mv.Stack.apply(*tensors, axis=axis)


def split(x, sections, axis: int = 0) -> tuple[Tensor, ...]:
    """Split along ``axis`` into ``sections`` equal parts (int) or at the given indices (list)."""
    return _mv.Split.apply(x, sections=sections, axis=axis)


def pad(x, pad_width, value: float = 0.0):
    return _mv.Pad.apply(x, pad_width=pad_width, value=value)


def take(x, indices, axis: int = 0):
    return _t(x).take(indices, axis=axis)


def reshape(x, *shape):
    return _t(x).reshape(*shape)


def transpose(x, *axes):
    return _t(x).transpose(*axes)


def broadcast_to(x, shape):
    return _t(x).broadcast_to(shape)
