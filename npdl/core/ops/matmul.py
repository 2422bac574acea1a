"""Matrix products: ``MatMul``/``matmul`` (1-D, 2-D and batched with broadcast batch dims) and the
fused ``Affine``/``linear`` (x W^T + b; ``npdl.nn.Linear`` is the layer around it)."""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module


def _t(a: np.ndarray) -> np.ndarray:
    xp = np if type(a) is np.ndarray else get_array_module(a)
    return xp.swapaxes(a, -1, -2)


class MatMul(Function):
    """z = a @ b with NumPy's matmul semantics."""

    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least one dimension (use * for scalars)")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                             f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
        ctx.saved = (a, b)
        return a @ b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved
        na, nb = ctx.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        if a.ndim == 1:  # (k,) @ (..., k, m) -> (..., m)
            ga = (b @ g[..., None])[..., 0] if na else None
            gb = a[:, None] * g[..., None, :] if nb else None
            return ga, gb
        if b.ndim == 1:  # (..., n, k) @ (k,) -> (..., n)
            ga = g[..., :, None] * b if na else None
            gb = (_t(a) @ g[..., None])[..., 0] if nb else None
            return ga, gb
        ga = gb = None
        if na:
            if b.ndim == 2 and g.ndim > 2:  # (..., n, m) @ (m, k): one big GEMM
                ga = (g.reshape(-1, g.shape[-1]) @ b.T).reshape(g.shape[:-1] + (b.shape[0],))
            else:
                ga = g @ _t(b)
        if nb:
            if b.ndim == 2 and a.ndim > 2:  # sum over the batch inside the GEMM
                gb = a.reshape(-1, a.shape[-1]).T @ g.reshape(-1, g.shape[-1])
            else:
                gb = _t(a) @ g
        return ga, gb


def matmul(a, b):
    """a @ b (``Tensor.__matmul__``)."""
    return MatMul.apply(a, b)


class Affine(Function):
    """y = x @ W^T + b with x (..., in), W (out, in) as in PyTorch, b (out,) or absent.

    Fused so the bias add and the leading-dim flattening cost one GEMM per product.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features, weight expects {weight.shape[1]} "
                             f"(weight shape {weight.shape} is (out_features, in_features))")
        x2 = x.reshape(-1, x.shape[-1])
        out = x2 @ weight.T
        if bias is not None:
            out += bias
        ctx.saved = (x2, weight)
        ctx.in_shape = x.shape
        ctx.has_bias = bias is not None
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved
        needs = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g2 @ w).reshape(ctx.in_shape) if needs[0] else None
        gw = g2.T @ x2 if needs[1] else None
        if not ctx.has_bias:
            return gx, gw
        gb = g2.sum(axis=0) if needs[2] else None
        return gx, gw, gb


def linear(x, weight, bias=None):
    """x @ weight.T + bias with weight (out_features, in_features)."""
    if bias is None:
        return Affine.apply(x, weight)
    return Affine.apply(x, weight, bias)
