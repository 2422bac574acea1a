"""Fused multi-head attention on packed projections: split heads, attend, merge heads in one node.

Built from (..., T, d) attention, a multi-head layer would need a reshape + transpose node per
input to split heads, another to merge them, and (for self-attention) a slice node per q/k/v
whose backward scatters into a fresh (B, T, 3E) zero array three times. ``MultiHeadAttention``
does all of that in one node (``scaled_dot_product_attention``, below, is this op with one head):

* the heads are *views*: (B, T, n*E) -> (B, T, n, H, d) -> (n, B, H, T, d), so the batched
  GEMMs read q, k, v straight out of the projection output (BLAS takes the row stride);
* the per-head outputs are written with ``matmul(out=)`` into a (B, T, H, d) buffer, which
  *is* the merged (B, T, E) input of the output projection, without a copy;
* backward writes dq, dk, dv into one (B, T, n, H, d) buffer per input, so the packed
  (B, T, 3E) self-attention projection receives its gradient without a concatenation;
* the batch is cut into one slab per BLAS thread and the slabs run on threads: the per-head
  GEMMs are too small for OpenBLAS to thread and the softmax is elementwise, so NumPy would
  use one core while PyTorch uses all; NumPy releases the GIL inside both. Every slab
  writes its own rows and the dropout mask is drawn up front in one piece, so results do
  not depend on the number of threads.

Maths (Vaswani et al. 2017, eq. 1; §3.2.2): per head, S = Q K^T * scale (+ bias), masked
entries set to the most negative float, P = softmax(S), optional inverted dropout
Pd = P * keep / (1 - p) (Srivastava et al. 2014), O = Pd V. Backward with G = dL/dO:
dV = Pd^T G, dPd = G V^T, dS = Pd * dPd - P * rowsum(Pd * dPd) (softmax Jacobian with the
dropout mask folded in, since Pd = P * m), dQ = scale dS K, dK = scale dS^T Q.
"""
from __future__ import annotations

import numpy as np

from npdl.core import random as _random
from npdl.core.autograd import Function
from npdl.core.backend import get_array_module
from npdl.core.ops.nn import causal_mask
from npdl.core.parallel import in_slabs
from npdl.core.random import keep_mask
from npdl.core.tensor import Tensor

_LAYOUTS = {"qkv": (3,), "q_kv": (1, 2), "q_k_v": (1, 1, 1)}


def split_heads(x: np.ndarray, parts: int, num_heads: int) -> np.ndarray:
    """(B, T, parts*H*d) -> (parts, B, H, T, d), a view when ``x`` is contiguous."""
    b, t, width = x.shape
    d = width // (parts * num_heads)
    return x.reshape(b, t, parts, num_heads, d).transpose(2, 0, 3, 1, 4)


def _batch_rows(a, lo: int, hi: int):
    """Rows lo:hi of something broadcastable to (B, H, Tq, Tk): sliced only where it varies with B."""
    return a[lo:hi] if a is not None and a.ndim == 4 and a.shape[0] != 1 else a


class MultiHeadAttention(Function):
    """softmax(q k^T * scale + bias, masked) v over ``num_heads`` heads, heads split and merged inside.

    Inputs by ``layout``:
        "qkv":   one (B, T, 3E) array, the packed self-attention projection [q | k | v];
        "q_kv":  q (B, Tq, E) and kv (B, Tk, 2E) = [k | v] (cross-attention over one memory);
        "q_k_v": q (B, Tq, E), k (B, Tk, E), v (B, Tk, Ev).
    Each E splits into ``num_heads`` heads of E / num_heads features, the PyTorch layout.
    Output: (B, Tq, Ev), the heads concatenated in order.

    Keyword args:
        mask: boolean, broadcastable to (B, H, Tq, Tk), **True where attention is allowed**.
        bias: float, broadcastable to (B, H, Tq, Tk), added to the scores (additive masks).
        causal: also forbid key j > i + (Tk - Tq) (the offset serves KV-cache decoding).
        scale: score multiplier; default 1 / sqrt(head_dim).
        dropout_p, rng: dropout on the attention probabilities (rng required when p > 0).
        weights_out: a list; when given, the (B, H, Tq, Tk) probabilities (before dropout)
            are appended to it (``need_weights`` without a second graph output).
    A query row with no allowed key outputs zeros and passes no gradient.
    """

    @staticmethod
    def forward(ctx, *arrays, layout="q_k_v", num_heads=1, mask=None, bias=None, causal=False, scale=None,
                dropout_p=0.0, rng=None, weights_out=None):
        xp = get_array_module(*arrays)
        parts = _LAYOUTS[layout]
        if len(arrays) != len(parts):
            raise ValueError(f"multi-head attention: layout {layout!r} takes {len(parts)} arrays, got {len(arrays)}")
        heads = [split_heads(a, n, num_heads) for a, n in zip(arrays, parts)]
        q, k, v = [h for group in heads for h in group]
        b, h, t_q, t_k = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        dt = q.dtype.type
        scale = dt(1.0 / np.sqrt(q.shape[-1]) if scale is None else scale)
        if mask is not None:
            mask = xp.asarray(mask)          # host masks move to the device (no-op on the CPU)
        if bias is not None:
            bias = xp.asarray(bias)
        if causal:
            cm = xp.asarray(causal_mask(t_q, t_k))
            mask = cm if mask is None else (mask & cm)
        blocked = dead = None
        if mask is not None:
            blocked = ~mask
            dead = ~xp.any(mask, axis=-1, keepdims=True)
            dead = dead if dead.any() else None
        p = xp.empty((b, h, t_q, t_k), q.dtype)
        keep = keep_mask(p.shape, dropout_p, rng, xp) if dropout_p > 0.0 else None  # one draw, any thread count
        pd = p if keep is None else xp.empty_like(p)
        ev = v.shape[1] * v.shape[3]
        out = xp.empty((b, t_q, ev), q.dtype)
        o4 = split_heads(out, 1, num_heads)[0]
        ones = xp.ones(t_k, q.dtype)
        lowest, drop_scale = np.finfo(q.dtype).min, dt(1.0 / (1.0 - dropout_p))

        def rows(lo, hi):
            s = p[lo:hi]
            xp.matmul(q[lo:hi], xp.swapaxes(k[lo:hi], -1, -2), out=s)  # (b, H, Tq, Tk)
            s *= scale
            if bias is not None:
                s += _batch_rows(bias, lo, hi)
            if blocked is not None:
                xp.copyto(s, lowest, where=_batch_rows(blocked, lo, hi))
            s -= s.max(axis=-1, keepdims=True)
            xp.exp(s, out=s)
            s /= (s @ ones)[..., None]  # row sums as a GEMV: ~5x faster than sum(axis=-1)
            if dead is not None:
                xp.copyto(s, dt(0), where=_batch_rows(dead, lo, hi))
            sd = s
            if keep is not None:
                sd = xp.multiply(s, keep[lo:hi], out=pd[lo:hi])
                sd *= drop_scale
            xp.matmul(sd, v[lo:hi], out=o4[lo:hi])

        in_slabs(rows, b, p.size)
        if weights_out is not None:
            weights_out.append(p)
        ctx.saved = (q, k, v, p, pd)
        ctx.shapes = [(a.shape, a.dtype) for a in arrays]
        ctx.layout, ctx.num_heads, ctx.scale = layout, num_heads, scale
        return out

    @staticmethod
    def backward(ctx, g):
        xp = np if type(g) is np.ndarray else get_array_module(g)
        q, k, v, p, pd = ctx.saved
        parts = _LAYOUTS[ctx.layout]
        needs = ctx.needs_input_grad
        grads = [xp.empty(shape, dtype) if need else None for (shape, dtype), need in zip(ctx.shapes, needs)]
        # views of the gradient buffers, one per q/k/v, in the (B, H, T, d) head layout
        views = []
        for gbuf, n in zip(grads, parts):
            views.extend([None] * n if gbuf is None else list(split_heads(gbuf, n, ctx.num_heads)))
        gq, gk, gv = views
        g4 = split_heads(g, 1, ctx.num_heads)[0]  # (B, H, Tq, dv)
        ones = xp.ones(p.shape[-1], p.dtype)

        def rows(lo, hi):
            if gv is not None:
                xp.matmul(xp.swapaxes(pd[lo:hi], -1, -2), g4[lo:hi], out=gv[lo:hi])
            if gq is None and gk is None:
                return
            gs = xp.matmul(g4[lo:hi], xp.swapaxes(v[lo:hi], -1, -2))  # dL/dPd
            gs *= pd[lo:hi]  # = P * dL/dP, dropout mask included
            gs -= p[lo:hi] * (gs @ ones)[..., None]
            gs *= ctx.scale
            if gq is not None:
                xp.matmul(gs, k[lo:hi], out=gq[lo:hi])
            if gk is not None:
                xp.matmul(xp.swapaxes(gs, -1, -2), q[lo:hi], out=gk[lo:hi])

        in_slabs(rows, p.shape[0], p.size)
        return tuple(grads)


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, training: bool = True,
                                 rng: np.random.Generator | None = None):
    """softmax(q k^T / sqrt(d) + mask) v.

    q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv) -> (..., Tq, dv); the leading dims broadcast.
    ``attn_mask``: boolean, broadcastable to (..., Tq, Tk), True where attention is allowed
    (PyTorch's convention). Runs the fused multi-head kernel with the leading dims as its
    batch and a single head, so both paths share one implementation.
    """
    xp = np if type(q) is np.ndarray else get_array_module(q)
    mask = None
    if attn_mask is not None:
        mask = xp.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
        if mask.dtype != bool:
            raise TypeError("scaled_dot_product_attention: attn_mask must be boolean (True = attend)")
    t_q, t_k, dv = q.shape[-2], k.shape[-2], v.shape[-1]
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    b = int(np.prod(lead))

    def batched(x):  # (..., T, d) -> (B, T, d)
        return x.broadcast_to(lead + x.shape[-2:]).reshape((b,) + x.shape[-2:])

    if mask is not None:
        mask = xp.broadcast_to(mask, lead + (t_q, t_k)).reshape(b, 1, t_q, t_k)
    p = dropout_p if training else 0.0
    out = MultiHeadAttention.apply(batched(q), batched(k), batched(v), layout="q_k_v", num_heads=1,
                                   mask=mask, causal=is_causal, scale=scale, dropout_p=p,
                                   rng=_random.resolve(rng) if p > 0 else None)
    return out.reshape(lead + (t_q, dv))
