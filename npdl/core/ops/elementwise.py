"""Elementwise primitives: arithmetic, unary math, activations, selection.

Each ``Function`` is followed by its public function (``Exp`` and ``exp``); ``npdl.exp``,
``npdl.functional.relu`` and the Tensor methods (``x.exp()``, ``x + y``) are these functions.
Backwards return gradients with the *output's* shape; the engine un-broadcasts them to
each input's shape. No backward mutates the incoming gradient.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module
from npdl.core.ops.special import erf
from npdl.core.tensor import Tensor, _raw, wrap


class Add(Function):
    """z = x + y"""

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g


def add(x, y):
    """x + y (``Tensor.__add__``)."""
    return Add.apply(x, y)


class Sub(Function):
    """z = x - y"""

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


def sub(x, y):
    """x - y (``Tensor.__sub__``)."""
    return Sub.apply(x, y)


class Mul(Function):
    """z = x * y"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved = (x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        nx, ny = ctx.needs_input_grad
        return (g * y if nx else None), (g * x if ny else None)


def mul(x, y):
    """x * y (``Tensor.__mul__``)."""
    return Mul.apply(x, y)


class Div(Function):
    """z = x / y"""

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved = (x, y)
        return x / y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        gx = g / y
        gy = -gx * x / y if ctx.needs_input_grad[1] else None
        return gx, gy


def div(x, y):
    """x / y (``Tensor.__truediv__``)."""
    return Div.apply(x, y)


def _const_power(x: np.ndarray, p: float) -> np.ndarray:
    """x ** p for a constant p, by multiplications, sqrt or a reciprocal where p allows.

    Why: NumPy's ``np.power`` calls the general per-element ``pow`` for any exponent but a few
    it special-cases, and ``pow`` takes a slow path for negative bases: ``x ** 3`` on 4M float32
    normal draws measured 220 ms against 4.7 ms for ``x * x * x`` (likewise ``x ** -2``).
    p = 0, 1, -1 and 0.5 give the same bits as ``np.power`` (IEEE division and sqrt are
    correctly rounded); 3, -2, -0.5, 4 and 1.5 round once more than a correctly rounded ``pow``
    (within 2 ulp), well inside float tolerance. Other exponents keep ``np.power``.
    """
    xp = np if type(x) is np.ndarray else get_array_module(x)
    if x.dtype.kind != "f":
        return xp.power(x, p)
    one = x.dtype.type(1)
    if p == 0.0:
        return xp.ones_like(x)          # pow(x, 0) = 1 for every x, NaN included
    if p == 1.0:
        return x.copy()
    if p == 2.0:
        return x * x
    if p == 3.0:
        return x * x * x
    if p == 4.0:
        sq = x * x
        return xp.multiply(sq, sq, out=sq)
    if p == -1.0:
        return one / x
    if p == -2.0:
        return one / (x * x)
    if p == 0.5:
        return xp.sqrt(x)
    if p == -0.5:
        return one / xp.sqrt(x)
    if p == 1.5:
        return x * xp.sqrt(x)
    return xp.power(x, x.dtype.type(p))


class PowScalar(Function):
    """z = x ** p for a constant exponent p (negative bases allowed for integer p).

    dz/dx = p x^(p-1), with the same multiplication fast paths as the forward (``_const_power``).
    """

    @staticmethod
    def forward(ctx, x, exponent: float):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = (x,)
        ctx.p = exponent
        return _const_power(x, exponent)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        (x,) = ctx.saved
        p = ctx.p
        if p == 0.0:
            return xp.zeros_like(g)  # d/dx 1 = 0 (p x^(p-1) would give 0 * inf = NaN at x = 0)
        if p == 1.0:
            return g
        if p == 2.0:
            return g * (2 * x)
        if x.dtype.kind != "f":
            return g * (p * xp.power(x, p - 1))
        return g * (x.dtype.type(p) * _const_power(x, p - 1.0))


class Pow(Function):
    """z = x ** y with both sides tensors; d/dy uses log(x), defined for x > 0."""

    @staticmethod
    def forward(ctx, x, y):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        out = xp.power(x, y)
        ctx.saved = (x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        x, y, out = ctx.saved
        gx = g * y * xp.power(x, y - 1) if ctx.needs_input_grad[0] else None
        gy = None
        if ctx.needs_input_grad[1]:
            safe = xp.where(x > 0, x, 1)
            gy = g * out * xp.log(safe) * (x > 0)
        return gx, gy


def power(x, exponent):
    """x ** exponent (``Tensor.__pow__``): a constant exponent takes ``PowScalar``, a tensor ``Pow``."""
    if isinstance(exponent, Tensor):
        return Pow.apply(x, exponent)
    return PowScalar.apply(x, exponent=float(exponent))


class Neg(Function):
    """z = -x"""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


def neg(x):
    """-x (``Tensor.__neg__``)."""
    return Neg.apply(x)


class Exp(Function):
    """z = e^x"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        out = xp.exp(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved


def exp(x):
    return Exp.apply(x)


class Log(Function):
    """z = ln x"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = x
        return xp.log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved


def log(x):
    return Log.apply(x)


class Sqrt(Function):
    """z = sqrt(x)"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        out = xp.sqrt(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved)


def sqrt(x):
    return Sqrt.apply(x)


class Abs(Function):
    """z = |x| (subgradient 0 at 0)"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = x
        return xp.abs(x)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        return g * xp.sign(ctx.saved)


def abs(x):  # noqa: A001 - mirrors numpy.abs
    return Abs.apply(x)


class Tanh(Function):
    """z = tanh x"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        out = xp.tanh(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved
        return g * (1 - out * out)


def tanh(x):
    return Tanh.apply(x)


def sigmoid_array(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + e^-x) via 0.5 * (1 + tanh(x / 2)): one transcendental, no overflow, and NumPy's
    tanh is vectorised where the ``where``-based stable forms are not. ``out`` may be ``x``."""
    xp = np if type(x) is np.ndarray else get_array_module(x)
    half = x.dtype.type(0.5)
    out = xp.multiply(x, half, out=out)
    xp.tanh(out, out=out)
    out *= half
    out += half
    return out


class Sigmoid(Function):
    """z = 1 / (1 + e^-x)"""

    @staticmethod
    def forward(ctx, x):
        out = sigmoid_array(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved
        return g * out * (1 - out)


def sigmoid(x):
    return Sigmoid.apply(x)


class Relu(Function):
    """z = max(x, 0)"""

    @staticmethod
    def forward(ctx, x):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        out = xp.maximum(x, 0)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.saved > 0)


def relu(x):
    """max(x, 0)"""
    return Relu.apply(x)


class LeakyRelu(Function):
    """z = x if x > 0 else negative_slope * x"""

    @staticmethod
    def forward(ctx, x, negative_slope: float = 0.01):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = x
        ctx.slope = negative_slope
        return xp.where(x > 0, x, x * x.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        x = ctx.saved
        return g * xp.where(x > 0, x.dtype.type(1), x.dtype.type(ctx.slope))


def leaky_relu(x, negative_slope: float = 0.01):
    """x if x > 0 else negative_slope * x"""
    return LeakyRelu.apply(x, negative_slope=negative_slope)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """Gaussian error linear unit (Hendrycks & Gimpel 2016, arXiv:1606.08415).

    approximate='none': x * Phi(x) with Phi the normal CDF (exact, via erf);
    approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the paper's eq. for speed.
    """

    @staticmethod
    def forward(ctx, x, approximate: str = "none"):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = x
        ctx.approximate = approximate
        t = x.dtype.type
        if approximate == "tanh":
            inner = t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x * x * x)
            th = xp.tanh(inner)
            ctx.th = th
            return t(0.5) * x * (1 + th)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        cdf = t(0.5) * (1 + erf(x * t(_INV_SQRT_2)))
        ctx.cdf = cdf
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        x = ctx.saved
        t = x.dtype.type
        if ctx.approximate == "tanh":
            th = ctx.th
            d_inner = t(_SQRT_2_OVER_PI) * (1 + t(3 * 0.044715) * x * x)
            return g * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * d_inner)
        pdf = t(_INV_SQRT_2PI) * xp.exp(t(-0.5) * x * x)
        return g * (ctx.cdf + x * pdf)


def gelu(x, approximate: str = "none"):
    """x * Phi(x); ``approximate='tanh'`` uses the tanh form (faster)."""
    return Gelu.apply(x, approximate=approximate)


class Clip(Function):
    """z = min(max(x, lo), hi); the gradient passes where lo <= x <= hi."""

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = x
        ctx.lo, ctx.hi = lo, hi
        return xp.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        x = ctx.saved
        keep = xp.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            keep &= x >= ctx.lo
        if ctx.hi is not None:
            keep &= x <= ctx.hi
        return g * keep


def clip(x, min=None, max=None):  # noqa: A002
    return Clip.apply(x, lo=min, hi=max)


class Maximum(Function):
    """z = max(x, y) elementwise; ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = (x, y)
        return xp.maximum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        wx = (x > y) + 0.5 * (x == y)
        wx = wx.astype(g.dtype)
        return g * wx, g * (1 - wx)


def maximum(a, b):
    """Elementwise max of two tensors (or a tensor and a constant)."""
    return Maximum.apply(a, b)


class Minimum(Function):
    """z = min(x, y) elementwise; ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = (x, y)
        return xp.minimum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        wx = ((x < y) + 0.5 * (x == y)).astype(g.dtype)
        return g * wx, g * (1 - wx)


def minimum(a, b):
    return Minimum.apply(a, b)


class Where(Function):
    """z = x where cond else y (cond: boolean, no gradient)."""

    @staticmethod
    def forward(ctx, cond, x, y):
        xp = np if type(cond) is np.ndarray else get_array_module(cond)
        cond = cond.astype(bool, copy=False)
        ctx.saved = cond
        return xp.where(cond, x, y)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        cond = ctx.saved
        nx, ny = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        zero = g.dtype.type(0)
        return None, (xp.where(cond, g, zero) if nx else None), (xp.where(cond, zero, g) if ny else None)


def where(cond, a, b):
    """``a`` where ``cond`` is True, else ``b``; ``cond`` is boolean and carries no gradient."""
    xp = get_array_module(cond, a, b)
    c = cond.data if isinstance(cond, Tensor) else xp.asarray(cond)
    if c.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got {c.dtype}")
    return Where.apply(c, a, b)


class MaskedFill(Function):
    """z = value where mask else x (mask broadcasts against x)."""

    @staticmethod
    def forward(ctx, x, mask, value: float = 0.0):
        xp = np if type(x) is np.ndarray else get_array_module(x)
        ctx.saved = mask
        return xp.where(mask, x.dtype.type(value), x)

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        return xp.where(ctx.saved, g.dtype.type(0), g), None


def masked_fill(x, mask, value: float):
    """Replace entries where ``mask`` is True with ``value`` (mask broadcasts)."""
    xp = np if type(x) is np.ndarray else get_array_module(x)
    return MaskedFill.apply(x, xp.asarray(_raw(mask), dtype=bool), value=value)


class Cast(Function):
    """Change floating precision; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype=np.float32):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src)


def astype(x, dtype):
    """Differentiable cast (float32 <-> float64; to integer types cuts the graph)."""
    dtype = np.dtype(dtype)
    if dtype == x.data.dtype:
        return x
    if dtype.kind != "f":
        return wrap(x.data.astype(dtype))
    return Cast.apply(x, dtype=dtype)
