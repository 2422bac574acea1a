"""Elementwise primitives: arithmetic, unary math, activations, selection.

Backwards return gradients with the *output's* shape; the engine un-broadcasts them to
each input's shape. No backward mutates the incoming gradient.
"""
from __future__ import annotations

import math

import numpy as np

from npdl.core.autograd import Function
from npdl.core.ops.special import erf


class Add(Function):
    """z = x + y"""

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    """z = x - y"""

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


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


class PowScalar(Function):
    """z = x ** p for a constant exponent p (negative bases allowed for integer p)."""

    @staticmethod
    def forward(ctx, x, exponent: float):
        ctx.saved = (x,)
        ctx.p = exponent
        if exponent == 2.0:
            return x * x
        return np.power(x, x.dtype.type(exponent)) if x.dtype.kind == "f" else np.power(x, exponent)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved
        p = ctx.p
        if p == 2.0:
            return g * (2 * x)
        return g * (p * np.power(x, x.dtype.type(p - 1)))


class Pow(Function):
    """z = x ** y with both sides tensors; d/dy uses log(x), defined for x > 0."""

    @staticmethod
    def forward(ctx, x, y):
        out = np.power(x, y)
        ctx.saved = (x, y, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, y, out = ctx.saved
        gx = g * y * np.power(x, y - 1) if ctx.needs_input_grad[0] else None
        gy = None
        if ctx.needs_input_grad[1]:
            safe = np.where(x > 0, x, 1)
            gy = g * out * np.log(safe) * (x > 0)
        return gx, gy


class Neg(Function):
    """z = -x"""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    """z = e^x"""

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved


class Log(Function):
    """z = ln x"""

    @staticmethod
    def forward(ctx, x):
        ctx.saved = x
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.saved


class Sqrt(Function):
    """z = sqrt(x)"""

    @staticmethod
    def forward(ctx, x):
        out = np.sqrt(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g / (2 * ctx.saved)


class Abs(Function):
    """z = |x| (subgradient 0 at 0)"""

    @staticmethod
    def forward(ctx, x):
        ctx.saved = x
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        return g * np.sign(ctx.saved)


class Tanh(Function):
    """z = tanh x"""

    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        out = ctx.saved
        return g * (1 - out * out)


def sigmoid_array(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """1 / (1 + e^-x) via 0.5 * (1 + tanh(x / 2)): one transcendental, no overflow, and NumPy's
    tanh is vectorised where the ``where``-based stable forms are not. ``out`` may be ``x``."""
    half = x.dtype.type(0.5)
    out = np.multiply(x, half, out=out)
    np.tanh(out, out=out)
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


class Relu(Function):
    """z = max(x, 0)"""

    @staticmethod
    def forward(ctx, x):
        out = np.maximum(x, 0)
        ctx.saved = out
        return out

    @staticmethod
    def backward(ctx, g):
        return g * (ctx.saved > 0)


class LeakyRelu(Function):
    """z = x if x > 0 else negative_slope * x"""

    @staticmethod
    def forward(ctx, x, negative_slope: float = 0.01):
        ctx.saved = x
        ctx.slope = negative_slope
        return np.where(x > 0, x, x * x.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved
        return g * np.where(x > 0, x.dtype.type(1), x.dtype.type(ctx.slope))


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
        ctx.saved = x
        ctx.approximate = approximate
        t = x.dtype.type
        if approximate == "tanh":
            inner = t(_SQRT_2_OVER_PI) * (x + t(0.044715) * x * x * x)
            th = np.tanh(inner)
            ctx.th = th
            return t(0.5) * x * (1 + th)
        if approximate != "none":
            raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
        cdf = t(0.5) * (1 + erf(x * t(_INV_SQRT_2)))
        ctx.cdf = cdf
        return x * cdf

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved
        t = x.dtype.type
        if ctx.approximate == "tanh":
            th = ctx.th
            d_inner = t(_SQRT_2_OVER_PI) * (1 + t(3 * 0.044715) * x * x)
            return g * (t(0.5) * (1 + th) + t(0.5) * x * (1 - th * th) * d_inner)
        pdf = t(_INV_SQRT_2PI) * np.exp(t(-0.5) * x * x)
        return g * (ctx.cdf + x * pdf)


class Clip(Function):
    """z = min(max(x, lo), hi); the gradient passes where lo <= x <= hi."""

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        ctx.saved = x
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, g):
        x = ctx.saved
        keep = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            keep &= x >= ctx.lo
        if ctx.hi is not None:
            keep &= x <= ctx.hi
        return g * keep


class Maximum(Function):
    """z = max(x, y) elementwise; ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved = (x, y)
        return np.maximum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        wx = (x > y) + 0.5 * (x == y)
        wx = wx.astype(g.dtype)
        return g * wx, g * (1 - wx)


class Minimum(Function):
    """z = min(x, y) elementwise; ties split the gradient evenly."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.saved = (x, y)
        return np.minimum(x, y)

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved
        wx = ((x < y) + 0.5 * (x == y)).astype(g.dtype)
        return g * wx, g * (1 - wx)


class Where(Function):
    """z = x where cond else y (cond: boolean, no gradient)."""

    @staticmethod
    def forward(ctx, cond, x, y):
        cond = cond.astype(bool, copy=False)
        ctx.saved = cond
        return np.where(cond, x, y)

    @staticmethod
    def backward(ctx, g):
        cond = ctx.saved
        nx, ny = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        zero = g.dtype.type(0)
        return None, (np.where(cond, g, zero) if nx else None), (np.where(cond, zero, g) if ny else None)


class MaskedFill(Function):
    """z = value where mask else x (mask broadcasts against x)."""

    @staticmethod
    def forward(ctx, x, mask, value: float = 0.0):
        ctx.saved = mask
        return np.where(mask, x.dtype.type(value), x)

    @staticmethod
    def backward(ctx, g):
        return np.where(ctx.saved, g.dtype.type(0), g), None


class Cast(Function):
    """Change floating precision; the gradient is cast back."""

    @staticmethod
    def forward(ctx, x, dtype=np.float32):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src)
