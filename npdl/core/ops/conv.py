"""2-D convolution and pooling over (N, C, H, W), via strided window views (im2col).

No Python loop runs over pixels: the forward gathers every receptive field at once with
``sliding_window_view`` and does one GEMM; backwards loop only over the KH*KW kernel
offsets, each a strided slab add over the whole batch.
"""
from __future__ import annotations

import numpy as np

from npdl.core.autograd import Function
from npdl.core.backend import extras, get_array_module  # `xpm`: the array module (`xp` is the padded input here)
from npdl.core.ops.nn import standardize, standardize_backward


def out_size(n: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution/pool along one spatial axis."""
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _windows(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) view of the receptive fields of padded input ``xp`` (pooling)."""
    (sh, sw), (dh, dw) = stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = extras(get_array_module(xp)).sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return win[:, :, : sh * oh : sh, : sw * ow : sw, ::dh, ::dw]


def _offset_slab(xp: np.ndarray, i: int, j: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """xp[:, :, rows, cols] seen by kernel offset (i, j): (N, C, OH, OW) strided view."""
    (sh, sw), (dh, dw) = stride, dilation
    return xp[:, :, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw]


def _im2col(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """(C*KH*KW, N*OH*OW) matrix of receptive fields, channel-major like ``weight.reshape(O, -1)``.

    Built with one slab copy per kernel offset: each copy moves whole (OH, OW) planes, which
    is far faster than materialising a 6-D transposed window view element by element.
    """
    n, c = xp.shape[:2]
    cols = get_array_module(xp).empty((c, kh, kw, n, oh, ow), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _offset_slab(xp, i, j, stride, dilation, oh, ow).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * oh * ow)


def _col2im(cols: np.ndarray, xp_shape, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """Adjoint of ``_im2col``: add (C*KH*KW, N*OH*OW) columns back into a padded-input array."""
    n, c = xp_shape[:2]
    blocks = cols.reshape(c, kh, kw, n, oh, ow)
    gxp = get_array_module(cols).zeros(xp_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _offset_slab(gxp, i, j, stride, dilation, oh, ow)[...] += blocks[:, i, j].transpose(1, 0, 2, 3)
    return gxp


def _pad(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return get_array_module(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _unpad(gxp: np.ndarray, padding, shape) -> np.ndarray:
    ph, pw = padding
    return gxp[:, :, ph: ph + shape[2], pw: pw + shape[3]]


class Conv2d(Function):
    """y[n, o] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, s*h + d*i, s*w + d*j]

    x (N, C, H, W), weight (O, C, KH, KW), bias (O,) or absent -> (N, O, OH, OW).
    One GEMM (O, C*KH*KW) @ (C*KH*KW, N*OH*OW) forward; two GEMMs and a col2im backward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        n, c, h, w = x.shape
        o, cw, kh, kw = weight.shape
        if c != cw:
            raise ValueError(f"conv2d: input has {c} channels, weight expects {cw}")
        oh = out_size(h, kh, stride[0], padding[0], dilation[0])
        ow = out_size(w, kw, stride[1], padding[1], dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"conv2d: input {h}x{w} is too small for kernel {kh}x{kw} with padding {padding}")
        xp = _pad(x, padding)
        cols = _im2col(xp, kh, kw, stride, dilation, oh, ow)
        out = weight.reshape(o, -1) @ cols                    # (O, N*OH*OW)
        if bias is not None:
            out += bias[:, None]
        ctx.saved = (cols, weight)
        ctx.meta = (x.shape, xp.shape, stride, padding, dilation, oh, ow, bias is not None)
        return out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)

    @staticmethod
    def backward(ctx, g):
        cols, weight = ctx.saved
        x_shape, xp_shape, stride, padding, dilation, oh, ow, has_bias = ctx.meta
        o, c, kh, kw = weight.shape
        needs = ctx.needs_input_grad
        xpm = get_array_module(g)
        g_t = xpm.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(o, -1)   # (O, N*OH*OW)
        gx = None
        if needs[0]:
            gcols = weight.reshape(o, -1).T @ g_t                            # (C*KH*KW, N*OH*OW)
            gx = _unpad(_col2im(gcols, xp_shape, kh, kw, stride, dilation, oh, ow), padding, x_shape)
        gw = (g_t @ cols.T).reshape(weight.shape) if needs[1] else None
        if not has_bias:
            return gx, gw
        return gx, gw, (g_t.sum(axis=1) if needs[2] else None)


class MaxPool2d(Function):
    """Maximum over each window; the gradient goes to the first maximal entry (row-major in the
    window, as PyTorch), which matters after a ReLU where whole windows tie at zero.

    Forward is a running ``np.maximum`` over the KH*KW kernel-offset slabs; backward scans the
    offsets in order and hands each window's gradient to the first slab equal to its maximum.
    No (..., KH*KW) window copy is ever made.
    """

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
        kh, kw = kernel
        oh = out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
        ow = out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"max_pool2d: input {x.shape[2]}x{x.shape[3]} is too small for kernel {kernel}")
        fill = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xpm = get_array_module(x)
        xp = _pad(x, padding, fill)
        out = _offset_slab(xp, 0, 0, stride, dilation, oh, ow).copy()
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    xpm.maximum(out, _offset_slab(xp, i, j, stride, dilation, oh, ow), out=out)
        ctx.saved = (xp, out)
        ctx.meta = (x.shape, kernel, stride, padding, dilation)
        return out

    @staticmethod
    def backward(ctx, g):
        xp, out = ctx.saved
        x_shape, (kh, kw), stride, padding, dilation = ctx.meta
        oh, ow = out.shape[2:]
        xpm = get_array_module(g)
        gxp = xpm.zeros(xp.shape, dtype=g.dtype)
        taken = xpm.zeros(out.shape, dtype=bool)
        for i in range(kh):
            for j in range(kw):
                hit = _offset_slab(xp, i, j, stride, dilation, oh, ow) == out
                hit &= ~taken
                taken |= hit
                _offset_slab(gxp, i, j, stride, dilation, oh, ow)[...] += g * hit
        return _unpad(gxp, padding, x_shape)


class AvgPool2d(Function):
    """Mean over each window (zero padding counts toward the divisor, as PyTorch's default)."""

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        kh, kw = kernel
        oh = out_size(x.shape[2], kh, stride[0], padding[0], 1)
        ow = out_size(x.shape[3], kw, stride[1], padding[1], 1)
        if oh < 1 or ow < 1:
            raise ValueError(f"avg_pool2d: input {x.shape[2]}x{x.shape[3]} is too small for kernel {kernel}")
        xp = _pad(x, padding)
        win = _windows(xp, kh, kw, stride, (1, 1), oh, ow)
        ctx.meta = (x.shape, xp.shape, kernel, stride, padding)
        return win.mean(axis=(-2, -1))

    @staticmethod
    def backward(ctx, g):
        x_shape, xp_shape, (kh, kw), stride, padding = ctx.meta
        share = g / g.dtype.type(kh * kw)           # every input of a window gets an equal share
        gxp = get_array_module(g).zeros(xp_shape, dtype=g.dtype)
        for i in range(kh):
            for j in range(kw):
                _offset_slab(gxp, i, j, stride, (1, 1), *g.shape[2:])[...] += share
        return _unpad(gxp, padding, x_shape)


class BatchNorm(Function):
    """Batch normalisation in training mode over every axis but the channel axis 1
    (Ioffe & Szegedy 2015, arXiv:1502.03167): y = (x - mean_B) / sqrt(var_B + eps) * w + b.

    x (N, C, ...); weight, bias (C,) or absent. When ``stats`` (a dict) is given, the batch
    mean and biased variance (C,) are stored in it for the caller's running averages.
    """

    @staticmethod
    def forward(ctx, x, weight=None, bias=None, eps=1e-5, stats=None):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xhat, rstd, mu, var = standardize(x, axes, eps)
        if stats is not None:
            stats["mean"], stats["var"] = mu.reshape(-1), var.reshape(-1)
        ctx.saved = (xhat, rstd, weight)
        ctx.axes, ctx.shape, ctx.has_bias = axes, shape, bias is not None
        out = xhat * weight.reshape(shape) if weight is not None else xhat.copy()
        if bias is not None:
            out += bias.reshape(shape)
        return out

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved
        axes, shape = ctx.axes, ctx.shape
        needs = ctx.needs_input_grad
        gxhat = g * weight.reshape(shape) if weight is not None else g
        grads = [standardize_backward(gxhat, xhat, rstd, axes) if needs[0] else None]
        if weight is not None:
            grads.append((g * xhat).sum(axis=axes) if needs[1] else None)
            if ctx.has_bias:
                grads.append(g.sum(axis=axes) if needs[2] else None)
        return tuple(grads)
