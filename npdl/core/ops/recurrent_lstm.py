"""Fused LSTM recurrence (one layer direction, input projection included, as one graph node).

The design, the shared interface and the helpers are in ``recurrent.py``. The LSTM, the
layer that the benchmark and the language models lean on, additionally runs its time loop
*feature-major*: states are (H, B), gates (4, H, B), so that

* the per-step product W_hh (4H, H) @ h (H, B) has the thread-friendly shape and lands
  directly in the gates' layout (no per-step transposition, ~30 us a step otherwise);
* every gate slice is a contiguous block, which makes the small ufuncs cheaper.

The input projection is one GEMM into (4H, T*B), permuted once to (T, 4, H, B); backward
permutes the gate gradients back to (4H, T*B) for its three GEMMs. Those permutations and
the (T, B, H) <-> (T, H, B) transpositions of outputs and their gradients move whole
contiguous rows and cost ~0.5 ms in all at (T=35, B=32, H=256).
"""
from __future__ import annotations

import numpy as np

from npdl.core.backend import get_array_module
from npdl.core.ops.recurrent import _buffer, _check, _Fused, _prepare, _states, _steps, _transposed


class LSTMRecurrence(_Fused):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate: Gers et al. 2000), gates i, f, g, o:

        i, f, o = sigmoid(.), g = tanh(.) of W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    Inputs ``(x, h0, c0, w_ih, w_hh[, b_ih, b_hh])``; outputs ``(hs, h_T, c_T)``.
    With t = tanh(x/2) the sigmoid is (1 + t)/2, so the rows of i, f, o in both weights and
    the biases are pre-scaled by 1/2 and one ``tanh`` over all four gates follows the GEMMs;
    the biases enter the input GEMM as a column of ones beside x.
    Saved per step for backward, with s' = s(1-s):
        p = [g i', c_{t-1} f', i (1-g^2), tanh(c_t) o'], qc = o (1 - tanh(c_t)^2), f.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, *biases, mask=None, reverse=False, workspace=None):
        xp = get_array_module(x)
        t_len, b, h = _check("lstm", x, h0, w_ih, w_hh, biases, 4, mask, c0)
        dtype, ws, i_size, n = x.dtype, workspace, x.shape[2], t_len * x.shape[1]
        grad, m, pad = _prepare(ctx, x, mask)
        if m is not None:                                  # (T, 1, B): broadcast over (H, B)
            m, pad = m.transpose(0, 2, 1), pad.transpose(0, 2, 1)
        half = xp.array([0.5, 0.5, 1.0, 0.5], dtype)[:, None, None]
        off = xp.array([0.5, 0.5, 0.0, 0.5], dtype)[:, None, None]
        quarter = xp.array([0.25, 0.25, 1.0, 0.25], dtype)[:, None, None]
        one = dtype.type(1)
        xa = _buffer(ws, "xa", (n, i_size + 1), dtype, xp)    # [x | 1]
        xp.copyto(xa[:, :i_size].reshape(x.shape), x)
        xa[:, i_size] = 1
        wa = _buffer(ws, "wa", (4, h, i_size + 1), dtype, xp)  # [W_ih | b_ih + b_hh], sigmoid rows halved
        xp.multiply(w_ih.reshape(4, h, i_size), half, out=wa[:, :, :i_size])
        wa[:, :, i_size] = (biases[0] + biases[1]).reshape(4, h) * half[:, :, 0] if biases else 0
        xg = _buffer(ws, "xg", (4 * h, n), dtype, xp)
        xp.matmul(wa.reshape(4 * h, i_size + 1), xa.T, out=xg)
        g_all = _buffer(ws, "g", (t_len, 4, h, b), dtype, xp)  # pre-activations; step t leaves p there
        xp.copyto(g_all, xg.reshape(4, h, t_len, b).transpose(2, 0, 1, 3))
        w_s = xp.multiply(w_hh.reshape(4, h, h), half, out=_buffer(ws, "w_s", (4, h, h), dtype, xp)).reshape(4 * h, h)
        s = _buffer(ws, "s", (t_len + 1, h, b), dtype, xp)
        prev, cur = _states(s, reverse)
        prev[-1 if reverse else 0] = h0.T
        # [c_{t-1}, tanh(c_t)] stacked, so the factors of f and o (slots 1 and 3 of p) take
        # one multiply; two such pairs alternate as the step advances
        pair, nxt = xp.empty((2, h, b), dtype), xp.empty((2, h, b), dtype)
        pair[0] = c0.T
        if grad:
            qc = _buffer(ws, "qc", (t_len, h, b), dtype, xp)
            f_all = _buffer(ws, "f", (t_len, h, b), dtype, xp)
        mm = xp.empty((4 * h, b), dtype)
        y = xp.empty((4, h, b), dtype)
        y2 = y.reshape(4 * h, b)
        tmp = xp.empty((h, b), dtype)
        for t in _steps(t_len, reverse):
            xp.matmul(w_s, prev[t], out=mm)
            xp.add(g_all[t].reshape(4 * h, b), mm, out=y2)
            xp.tanh(y, out=y)                              # tanh(x/2) for i, f, o; tanh(x) for g
            if grad:
                p = g_all[t]
                xp.multiply(y, y, out=p)                   # (1 - y^2) / 4 = s(1-s) for sigmoid gates
                xp.subtract(one, p, out=p)
                p *= quarter
            y *= half
            y += off                                       # now i, f, g, o
            i, f, g, o = y
            c_prev, c_new, tc = pair[0], nxt[0], pair[1]
            xp.multiply(f, c_prev, out=c_new)
            xp.multiply(i, g, out=tmp)
            c_new += tmp
            xp.tanh(c_new, out=tc)
            h_t = cur[t]
            xp.multiply(o, tc, out=h_t)
            if grad:
                p[0:3:2] *= y[2::-2]                       # p_i *= g, p_g *= i
                p[1::2] *= pair                            # p_f *= c_{t-1}, p_o *= tanh(c_t)
                q = qc[t]                                  # o (1 - tanh(c)^2) = o - h tanh(c)
                xp.multiply(h_t, tc, out=q)
                xp.subtract(o, q, out=q)
                xp.copyto(f_all[t], f)
            if pad is not None:
                xp.copyto(h_t, prev[t], where=pad[t])
                xp.copyto(c_new, c_prev, where=pad[t])
            pair, nxt = nxt, pair
        if grad:
            if m is not None:                              # padded steps: no gate gradient, c passes through
                g_all *= m[:, None]
                qc *= m
                f_all *= m
                f_all += one - m
            ctx.saved = (g_all, qc, f_all, xa[:, :i_size], s, w_ih, w_hh, m, pad)
            LSTMRecurrence._remember(ctx, (x, h0, c0, w_ih, w_hh, *biases),
                                     {"mask": mask, "reverse": reverse, "workspace": ws})
            ctx.reverse, ctx.has_bias, ctx.x_shape, ctx.ws = reverse, bool(biases), x.shape, ws
        hs = _buffer(ws, "hs", (t_len, b, h), dtype, xp)       # (T, B, H), zero at padded steps
        if m is None:
            xp.copyto(hs, cur.transpose(0, 2, 1))
        else:
            xp.multiply(cur.transpose(0, 2, 1), m.transpose(0, 2, 1), out=hs)
        return hs, cur[0 if reverse else -1].T.copy(), pair[0].T.copy()

    @staticmethod
    def backward(ctx, grads):
        xp = get_array_module(*grads)
        g_hs, g_ht, g_ct = grads
        g_all, qc, f_all, x2, s, w_ih, w, m, pad = LSTMRecurrence._take_saved(ctx)
        t_len, _, h, b = g_all.shape
        ws, needs = ctx.ws, ctx.needs_input_grad
        prev, _ = _states(s, ctx.reverse)
        g_t = _buffer(ws, "g_hs", (t_len, h, b), s.dtype, xp)  # output gradients, feature-major
        if m is None:
            xp.copyto(g_t, g_hs.transpose(0, 2, 1))
        else:                                              # outputs at padded steps are constant zeros
            xp.multiply(g_hs.transpose(0, 2, 1), m, out=g_t)
        wt = _transposed(ws, w)
        dhr = xp.array(g_ht.T, dtype=s.dtype, order="C")   # gradient reaching h_t via the recurrence
        dc = xp.array(g_ct.T, dtype=s.dtype, order="C")
        dh = xp.empty_like(dc)
        tmp = xp.empty_like(dc)
        for t in _steps(t_len, not ctx.reverse):
            xp.add(g_t[t], dhr, out=dh)
            p = g_all[t]
            xp.multiply(p[3], dh, out=p[3])                # do
            xp.multiply(dh, qc[t], out=tmp)
            dc += tmp                                      # dc_t: from c_{t+1} and from h_t
            xp.multiply(p[:3], dc, out=p[:3])              # di, df, dg
            dc *= f_all[t]
            xp.matmul(wt, p.reshape(4 * h, b), out=dhr)
            if pad is not None:
                xp.copyto(dhr, dh, where=pad[t])           # a padded step passes the state through
        dg = _buffer(ws, "xg", (4 * h, t_len * b), s.dtype, xp)   # (4H, T*B) for the GEMMs over all steps
        xp.copyto(dg.reshape(4, h, t_len, b), g_all.transpose(1, 2, 0, 3))
        dx = dw_ih = dw_hh = db = None
        if needs[0]:
            dx = xp.matmul(dg.T, w_ih, out=_buffer(ws, "dx", (t_len * b, x2.shape[1]), s.dtype, xp))
            dx = dx.reshape(ctx.x_shape)
        if needs[3]:
            dw_ih = xp.matmul(dg, x2, out=_buffer(ws, "dw_ih", w_ih.shape, s.dtype, xp))
        if needs[4]:
            hp = _buffer(ws, "hp", (h, t_len * b), s.dtype, xp)
            xp.copyto(hp.reshape(h, t_len, b), prev.transpose(1, 0, 2))
            dw_hh = xp.matmul(dg, hp.T, out=_buffer(ws, "dw_hh", w.shape, s.dtype, xp))
        if ctx.has_bias and (needs[5] or needs[6]):
            db = dg.sum(axis=1)
        out = (dx, dhr.T.copy() if needs[1] else None, dc.T.copy() if needs[2] else None, dw_ih, dw_hh)
        return out + (db, db) if ctx.has_bias else out     # the engine copies each into its own .grad
