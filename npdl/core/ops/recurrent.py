"""Fused recurrences: one RNN/LSTM/GRU layer direction, input projection included, as one graph node.

Run op by op, a recurrent layer records ~10 nodes per time step and allocates each output;
at (B=32, H=256) Python and allocation then cost more than the arithmetic. Each op here
takes the layer's input and weights and does, in NumPy:

* one GEMM for the input projection of all steps, x (T*B, I) @ W_ih^T, into a buffer XG
  (the LSTM folds its biases into this GEMM as a column of ones beside x);
* the time loop, with preallocated per-step buffers and in-place ufuncs (``out=``);
* while the step's values are still in cache, the element-wise factors that backward
  needs (sigmoid' = s(1-s), tanh' = 1-y^2 times the other operand), written over XG[t],
  which the step has consumed: no separate activation store, and backward's loop is
  ~6 small ufuncs and one GEMM per step (hand-written BPTT, Werbos 1990);
* after the loop in backward, dW_hh, dW_ih and dx as one GEMM each over all steps.

Allocation is kept to a minimum on purpose: a fresh multi-megabyte array costs page
faults (~0.6 ms per MB on the reference machine), which at these sizes is as much as the
arithmetic. A caller that runs the op every step (a layer) can pass a ``workspace`` dict:
the op then reuses the big buffers of an earlier call once nothing references them any
more (CPython's reference count says so exactly; see ``_buffer``).

Sigmoid is 0.5 * (1 + tanh(x / 2)), so one ``tanh`` call covers all gates; with
t = tanh(x / 2), s(1 - s) = (1 - t^2) / 4.

Every per-step product is computed transposed, W (G*H, H) @ h^T (H, B) -> (G*H, B):
OpenBLAS splits a GEMM across threads along its first dimension, and with B = 32 rows
first it runs up to 3x slower (and far less predictably on a busy machine).

Common interface (T steps, batch B, input I, hidden H, G gates; PyTorch's layouts):

    x      (T, B, I)    the layer input, time-major
    h0     (B, H)       initial hidden state (c0 (B, H) too for the LSTM)
    w_ih   (G*H, I), w_hh (G*H, H), and optionally b_ih, b_hh (G*H,) (both or neither)
    workspace           keyword; a dict the op may keep buffers in between calls (or None)
    mask   (T, B) bool  keyword; True = real step. At a padded step the state is carried
                        through unchanged and the output is zero, so with a left-aligned
                        mask the final state is each sequence's state at its last real step.
    reverse             keyword; run t = T-1 .. 0 (the backward direction of a bidirectional
                        layer, which thanks to the carried state starts at each sequence's
                        last real token, like PyTorch's packed sequences).
    -> hs (T, B, H) outputs, h_T (B, H) final hidden state (and c_T (B, H) for the LSTM)

States live in one (T+1, B, H) buffer ((T+1, H, B) in the feature-major LSTM): forward
writes S[t+1] from S[t], reverse writes S[t] from S[t+1]; ``prev``/``cur`` views make both
one loop, and ``prev`` reshaped to (T*B, H) is the right factor of dW_hh.

This file holds the shared machinery and the Elman RNN; ``recurrent_lstm.py`` and
``recurrent_gru.py`` hold the gated ones.
"""
from __future__ import annotations

import sys

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import get_array_module


def _buffer(ws: dict | None, name: str, shape: tuple[int, ...], dtype, xp=np) -> np.ndarray:
    """An uninitialised array: ``ws[name]`` when it has this shape and dtype and is free, else a new one.

    "Free" means that only ``ws`` references it: no saved context, output, view or gradient
    of an earlier call is alive (a view holds a reference to its base array). On a device
    (``xp`` not NumPy) every call allocates: CuPy's memory pool makes that cheap, and a
    device array's reference count need not tell whether a view of it is alive.
    """
    if ws is None or xp is not np:
        return xp.empty(shape, dtype)
    a = ws.get(name)
    if a is not None and a.shape == shape and a.dtype == dtype and sys.getrefcount(a) <= _FREE_REFS:
        return a
    a = xp.empty(shape, dtype)
    ws[name] = a
    return a


def _free_refs() -> int:
    """References to a ``ws`` entry seen inside ``_buffer`` when nothing else holds it (interpreter-specific)."""
    probe = {"a": np.empty(1)}
    a = probe.get("a")
    return sys.getrefcount(a)


_FREE_REFS = _free_refs()


def _check(name, x, h0, w_ih, w_hh, biases, gates, mask, c0=None):
    if x.ndim != 3:
        raise ValueError(f"{name}: input must be (T, B, I), got shape {x.shape}")
    t, b, i = x.shape
    if t == 0:
        raise ValueError(f"{name}: the sequence has no time steps")
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{name}: weight_hh must be ({gates}*H, H), got shape {w_hh.shape}")
    h = w_hh.shape[1]
    if w_ih.shape != (gates * h, i):
        raise ValueError(f"{name}: weight_ih must be ({gates}*H, I) = {(gates * h, i)}, got shape {w_ih.shape}")
    for label, s in (("h0", h0), ("c0", c0)):
        if s is not None and s.shape != (b, h):
            raise ValueError(f"{name}: {label} must be (B, H) = {(b, h)}, got shape {s.shape}")
    if len(biases) not in (0, 2) or any(v.shape != (gates * h,) for v in biases):
        raise ValueError(f"{name}: pass both biases (b_ih, b_hh), each ({gates * h},), or neither")
    if mask is not None and (mask.shape != (t, b) or mask.dtype != bool):
        raise ValueError(f"{name}: mask must be boolean (T, B) = {(t, b)}, got {mask.dtype} {mask.shape}")
    return t, b, h


def _prepare(ctx, x, mask):
    """Shared set-up: whether to record for backward, and the mask as (T, B, 1) float and "padded" bool."""
    grad = any(ctx.needs_input_grad)
    m = pad = None
    if mask is not None:
        mask = get_array_module(x).asarray(mask)   # a host mask moves to x's device (no-op on the CPU)
    if mask is not None and not mask.all():
        m, pad = mask[:, :, None].astype(x.dtype), ~mask[:, :, None]
    return grad, m, pad


def _flat_input(ws, x) -> np.ndarray:
    """x (T, B, I) as (T*B, I), copied only when x is not contiguous (a batch-first input seen time-major)."""
    xp = get_array_module(x)
    t, b, i = x.shape
    if x.flags.c_contiguous:
        return x.reshape(t * b, i)
    x2 = _buffer(ws, "x2", (t * b, i), x.dtype, xp)
    xp.copyto(x2.reshape(x.shape), x)
    return x2


def _project(ws, x2, w_ih, t, b):
    xp = get_array_module(x2)
    xg = _buffer(ws, "xg", (t, b, w_ih.shape[0]), x2.dtype, xp)
    xp.matmul(x2, w_ih.T, out=xg.reshape(t * b, -1))
    return xg


def _states(s: np.ndarray, reverse: bool):
    """(prev, cur) views of a (T+1, B, H) state buffer: step t reads prev[t], writes cur[t]."""
    return (s[1:], s[:-1]) if reverse else (s[:-1], s[1:])


def _steps(t: int, reverse: bool):
    return range(t - 1, -1, -1) if reverse else range(t)


def _outputs(ws, cur, m, reverse: bool):
    """The per-step outputs (zero at padded steps) and the final state.

    The final state is a copy so that carrying it into the next batch does not pin the buffer.
    """
    xp = get_array_module(cur)
    hs = cur
    if m is not None:
        hs = xp.multiply(cur, m, out=_buffer(ws, "hs", cur.shape, cur.dtype, xp))
    return hs, cur[0 if reverse else -1].copy()


def _recurrent_grad(h_shape, g_ht, dtype):
    """A (B, H) view of an (H, B) buffer: the per-step GEMM W^T @ dg^T writes it (see module doc)."""
    xp = get_array_module(g_ht)
    buf = xp.empty(h_shape[::-1], dtype)
    view = buf.T
    view[...] = g_ht
    return buf, view


def _transposed(ws, w: np.ndarray) -> np.ndarray:
    """W_hh^T as a C-ordered copy: with it the per-step GEMM W^T @ dg^T stays fast when other
    processes compete for the cores (a transposed view measured slower and far less steady)."""
    xp = get_array_module(w)
    wt = _buffer(ws, "w_t", w.shape[::-1], w.dtype, xp)
    xp.copyto(wt, w.T)
    return wt


def _input_side(ctx, dg, x2, w_ih, prev):
    """dx, dW_ih, dW_hh, db_ih, db_hh from the pre-activation gradients dg (T, B, G*H), one GEMM each.

    (For RNN and LSTM the input and hidden sides see the same pre-activation gradient.)
    """
    xp = get_array_module(dg)
    needs, ws = ctx.needs_input_grad, ctx.ws
    t, b = dg.shape[:2]
    flat = dg.reshape(t * b, -1)
    k = 2                                                           # inputs: x, h0, w_ih, w_hh[, b_ih, b_hh]
    dx = dw_ih = dw_hh = None
    if needs[0]:
        dx = xp.matmul(flat, w_ih, out=_buffer(ws, "dx", x2.shape, x2.dtype, xp)).reshape(ctx.x_shape)
    if needs[k]:
        dw_ih = xp.matmul(flat.T, x2, out=_buffer(ws, "dw_ih", w_ih.shape, w_ih.dtype, xp))
    if needs[k + 1]:
        h = prev.shape[-1]
        dw_hh = xp.matmul(flat.T, prev.reshape(t * b, h), out=_buffer(ws, "dw_hh", (flat.shape[1], h), w_ih.dtype, xp))
    if not ctx.has_bias:
        return dx, dw_ih, dw_hh
    db = flat.sum(axis=0) if needs[k + 2] or needs[k + 3] else None
    return dx, dw_ih, dw_hh, db, db                                 # the engine copies each into its own .grad


class _Fused(Function):
    """Base of the fused recurrences: multi-output, and safe under ``backward(retain_graph=True)``.

    Backward turns the saved factors into gradients in place (no second multi-megabyte
    buffer); if the same node is differentiated again, forward is re-run first to restore them.
    """

    multi_output = True

    @classmethod
    def _remember(cls, ctx, args, kwargs) -> None:
        ctx.args, ctx.kwargs, ctx.consumed = args, kwargs, False

    @classmethod
    def _take_saved(cls, ctx):
        if ctx.consumed:
            cls.forward(ctx, *ctx.args, **ctx.kwargs)
        ctx.consumed = True
        return ctx.saved


class RNNRecurrence(_Fused):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.

    Inputs ``(x, h0, w_ih, w_hh[, b_ih, b_hh])``; outputs ``(hs, h_T)`` (see the module docstring).
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, *biases, mask=None, reverse=False, nonlinearity="tanh", workspace=None):
        xp = get_array_module(x)
        t_len, b, h = _check("rnn", x, h0, w_ih, w_hh, biases, 1, mask)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        ws = workspace
        grad, m, pad = _prepare(ctx, x, mask)
        x2 = _flat_input(ws, x)
        xg = _project(ws, x2, w_ih, t_len, b)                # becomes act'(pre) per step
        bias = biases[0] + biases[1] if biases else None
        relu = nonlinearity == "relu"
        one = x.dtype.type(1)
        s = _buffer(ws, "s", (t_len + 1, b, h), x.dtype, xp)
        prev, cur = _states(s, reverse)
        prev[-1 if reverse else 0] = h0
        mm = xp.empty((h, b), x.dtype)
        for t in _steps(t_len, reverse):
            c, d = cur[t], xg[t]
            xp.matmul(w_hh, prev[t].T, out=mm)
            xp.add(d, mm.T, out=c)
            if bias is not None:
                c += bias
            if relu:
                xp.maximum(c, 0, out=c)
                if grad:
                    xp.greater(c, 0, out=d)
            else:
                xp.tanh(c, out=c)
                if grad:
                    xp.multiply(c, c, out=d)
                    xp.subtract(one, d, out=d)
            if pad is not None:
                xp.copyto(c, prev[t], where=pad[t])
        if grad:
            if m is not None:
                xg *= m                                  # padded steps: no gradient into the cell
            ctx.saved = (xg, x2, s, w_ih, w_hh, m, pad)
            RNNRecurrence._remember(ctx, (x, h0, w_ih, w_hh, *biases), {
                "mask": mask, "reverse": reverse, "nonlinearity": nonlinearity, "workspace": ws})
            ctx.reverse, ctx.has_bias, ctx.x_shape, ctx.ws = reverse, bool(biases), x.shape, ws
        return _outputs(ws, cur, m, reverse)

    @staticmethod
    def backward(ctx, grads):
        xp = get_array_module(*grads)
        g_hs, g_ht = grads
        d, x2, s, w_ih, w, m, pad = RNNRecurrence._take_saved(ctx)
        prev, _ = _states(s, ctx.reverse)
        wt = _transposed(ctx.ws, w)
        dhr_t, dhr = _recurrent_grad(g_ht.shape, g_ht, s.dtype)   # gradient reaching h_t via the recurrence
        dh = xp.empty_like(g_ht)
        for t in _steps(len(d), not ctx.reverse):
            if m is None:
                xp.add(g_hs[t], dhr, out=dh)
            else:
                xp.multiply(g_hs[t], m[t], out=dh)      # outputs at padded steps are constant zeros
                dh += dhr
            dt = d[t]
            dt *= dh                                     # the gradient of the pre-activation
            xp.matmul(wt, dt.T, out=dhr_t)
            if pad is not None:
                xp.copyto(dhr, dh, where=pad[t])         # a padded step passes the state through
        dx, dw_ih, dw_hh, *db = _input_side(ctx, d, x2, w_ih, prev)
        dh0 = xp.ascontiguousarray(dhr) if ctx.needs_input_grad[1] else None
        return (dx, dh0, dw_ih, dw_hh, *db)
