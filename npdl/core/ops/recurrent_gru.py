"""Fused GRU recurrence (one layer direction, input projection included, as one graph node).

The design, the shared interface and the helpers are in ``recurrent.py``.
"""
from __future__ import annotations

import numpy as np

from npdl.core.backend import get_array_module
from npdl.core.ops.recurrent import _buffer, _check, _flat_input, _Fused, _outputs, _prepare, _project, \
    _recurrent_grad, _states, _steps, _transposed


class GRURecurrence(_Fused):
    """GRU (Cho et al. 2014, arXiv:1406.1078) in PyTorch's form, gates r, z, n:

        r, z = sigmoid(W_i{r,z} x_t + b_i{r,z} + W_h{r,z} h_{t-1} + b_h{r,z})
        n = tanh(W_in x_t + b_in + r * (W_hn h_{t-1} + b_hn))        # b_hn inside the product
        h_t = (1 - z) * n + z * h_{t-1}

    Inputs ``(x, h0, w_ih, w_hh[, b_ih, b_hh])``; outputs ``(hs, h_T)``.
    Saved per step for backward, with s' = s(1-s) and hn = W_hn h_{t-1} + b_hn:
        p = [hn r', (h_{t-1} - n) z', (1 - z)(1 - n^2)], r, z.
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, *biases, mask=None, reverse=False, workspace=None):
        xp = get_array_module(x)
        t_len, b, h = _check("gru", x, h0, w_ih, w_hh, biases, 3, mask)
        dtype = x.dtype
        ws = workspace
        grad, m, pad = _prepare(ctx, x, mask)
        x2 = _flat_input(ws, x)
        xg = _project(ws, x2, w_ih, t_len, b)
        p_all = xg.reshape(t_len, b, 3, h)
        b_rz = b_in = b_hn = None
        if biases:
            b_rz = biases[0][:2 * h] + biases[1][:2 * h]
            b_in, b_hn = biases[0][2 * h:], biases[1][2 * h:]
        half, quarter, one = dtype.type(0.5), dtype.type(0.25), dtype.type(1)
        s = _buffer(ws, "s", (t_len + 1, b, h), dtype, xp)
        prev, cur = _states(s, reverse)
        prev[-1 if reverse else 0] = h0
        rz_all = _buffer(ws, "rz", (t_len if grad else 1, b, 2, h), dtype, xp)   # r, z (kept for backward)
        mm_t = xp.empty((3 * h, b), dtype)
        mm = mm_t.T                                                  # (B, 3H) view of the product
        d_rz = xp.empty((b, 2, h), dtype)
        hn, n, hd = (xp.empty((b, h), dtype) for _ in range(3))
        for t in _steps(t_len, reverse):
            hp = prev[t]
            xt = xg[t]
            xp.matmul(w_hh, hp.T, out=mm_t)
            rz = rz_all[t if grad else 0]
            rz2 = rz.reshape(b, 2 * h)
            xp.add(xt[:, :2 * h], mm[:, :2 * h], out=rz2)
            if b_rz is not None:
                rz2 += b_rz
            rz *= half
            xp.tanh(rz, out=rz)
            if grad:
                xp.multiply(rz, rz, out=d_rz)            # s(1-s) = (1 - tanh(x/2)^2) / 4
                xp.subtract(one, d_rz, out=d_rz)
                d_rz *= quarter
            rz *= half
            rz += half
            r, z = rz[:, 0], rz[:, 1]
            if b_hn is None:
                xp.copyto(hn, mm[:, 2 * h:])
            else:
                xp.add(mm[:, 2 * h:], b_hn, out=hn)
            xp.multiply(r, hn, out=n)
            n += xt[:, 2 * h:]
            if b_in is not None:
                n += b_in
            xp.tanh(n, out=n)
            xp.subtract(hp, n, out=hd)                   # h_t = n + z * (h_{t-1} - n)
            c = cur[t]
            xp.multiply(hd, z, out=c)
            c += n
            if grad:
                p = p_all[t]
                xp.multiply(hn, d_rz[:, 0], out=p[:, 0])
                xp.multiply(hd, d_rz[:, 1], out=p[:, 1])
                pn = p[:, 2]
                xp.multiply(n, n, out=pn)
                xp.subtract(one, pn, out=pn)
                xp.subtract(one, z, out=hd)
                pn *= hd
            if pad is not None:
                xp.copyto(c, hp, where=pad[t])
        if grad:
            z_all = rz_all[:, :, 1]
            if m is not None:
                p_all *= m[:, :, :, None]
                z_all *= m                               # a padded step passes dh straight through
                z_all += one - m
            ctx.saved = (p_all, rz_all, x2, s, w_ih, w_hh, m, pad)
            GRURecurrence._remember(ctx, (x, h0, w_ih, w_hh, *biases),
                                    {"mask": mask, "reverse": reverse, "workspace": ws})
            ctx.reverse, ctx.has_bias, ctx.x_shape, ctx.ws = reverse, bool(biases), x.shape, ws
        return _outputs(ws, cur, m, reverse)

    @staticmethod
    def backward(ctx, grads):
        xp = get_array_module(*grads)
        g_hs, g_ht = grads
        p_all, rz_all, x2, s, w_ih, w, m, pad = GRURecurrence._take_saved(ctx)
        t_len, b, _, h = p_all.shape
        prev, _ = _states(s, ctx.reverse)
        r_all, z_all = rz_all[:, :, 0], rz_all[:, :, 1]
        wt = _transposed(ctx.ws, w)
        dhr_t, dhr = _recurrent_grad(g_ht.shape, g_ht, s.dtype)
        dh = xp.empty_like(g_ht)
        dn = xp.empty_like(g_ht)
        tmp = xp.empty_like(g_ht)
        for t in _steps(t_len, not ctx.reverse):
            if m is None:
                xp.add(g_hs[t], dhr, out=dh)
            else:
                xp.multiply(g_hs[t], m[t], out=dh)
                dh += dhr
            p = p_all[t]                                 # becomes [dr, dz, dhn] (hidden side)
            xp.multiply(dh, p[:, 2], out=dn)             # dn_pre
            xp.multiply(p[:, 1], dh, out=p[:, 1])        # dz_pre
            xp.multiply(p[:, 0], dn, out=p[:, 0])        # dr_pre
            r = r_all[t]
            xp.multiply(dn, r, out=p[:, 2])              # d(W_hn h + b_hn) = dn_pre * r
            xp.copyto(r, dn)                             # keep dn_pre for the input side
            xp.matmul(wt, p.reshape(b, 3 * h).T, out=dhr_t)
            xp.multiply(dh, z_all[t], out=tmp)
            dhr += tmp
        needs, ws = ctx.needs_input_grad, ctx.ws
        flat = p_all.reshape(t_len * b, 3 * h)
        dw_hh = db_hh = dx = dw_ih = db_ih = None
        if needs[3]:
            dw_hh = xp.matmul(flat.T, prev.reshape(t_len * b, h), out=_buffer(ws, "dw_hh", w.shape, w.dtype, xp))
        if ctx.has_bias and needs[5]:
            db_hh = flat.sum(axis=0)
        p_all[:, :, 2] = r_all                           # input side: [dr, dz, dn_pre]
        if needs[0]:
            dx = xp.matmul(flat, w_ih, out=_buffer(ws, "dx", x2.shape, x2.dtype, xp)).reshape(ctx.x_shape)
        if needs[2]:
            dw_ih = xp.matmul(flat.T, x2, out=_buffer(ws, "dw_ih", w_ih.shape, w_ih.dtype, xp))
        if ctx.has_bias and needs[4]:
            db_ih = flat.sum(axis=0)
        dh0 = xp.ascontiguousarray(dhr) if needs[1] else None
        return (dx, dh0, dw_ih, dw_hh) + ((db_ih, db_hh) if ctx.has_bias else ())
