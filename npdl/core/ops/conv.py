"""2-D convolution and pooling over (N, C, H, W), via strided window views (im2col).

No Python loop runs over pixels: the forward gathers every receptive field at once with
``sliding_window_view`` and does one GEMM; backwards loop only over the KH*KW kernel
offsets, each a strided slab add over the whole batch.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from npdl.core.autograd import Function


def out_size(n: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Output length of a convolution/pool along one spatial axis."""
    return (n + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _windows(xp: np.ndarray, kh: int, kw: int, stride, dilation, oh: int, ow: int) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) view of the receptive fields of padded input ``xp``."""
    (sh, sw), (dh, dw) = stride, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    win = sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    return win[:, :, : sh * oh : sh, : sw * ow : sw, ::dh, ::dw]


def _scatter_windows(gwin: np.ndarray, xp_shape, stride, dilation) -> np.ndarray:
    """Adjoint of ``_windows``: add (N, C, OH, OW, KH, KW) window grads into a padded-input array."""
    (sh, sw), (dh, dw) = stride, dilation
    n, c, oh, ow, kh, kw = gwin.shape
    gxp = np.zeros(xp_shape, dtype=gwin.dtype)
    for i in range(kh):
        for j in range(kw):
            gxp[:, :, i * dh: i * dh + sh * oh: sh, j * dw: j * dw + sw * ow: sw] += gwin[:, :, :, :, i, j]
    return gxp


def _pad(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _unpad(gxp: np.ndarray, padding, shape) -> np.ndarray:
    ph, pw = padding
    return gxp[:, :, ph: ph + shape[2], pw: pw + shape[3]]


class Conv2d(Function):
    """y[n, o] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, s*h + d*i, s*w + d*j]

    x (N, C, H, W), weight (O, C, KH, KW), bias (O,) or absent -> (N, O, OH, OW).
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
        win = _windows(xp, kh, kw, stride, dilation, oh, ow)
        cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        out = cols @ weight.reshape(o, -1).T
        if bias is not None:
            out += bias
        ctx.saved = (cols, weight)
        ctx.meta = (x.shape, xp.shape, stride, padding, dilation, oh, ow, bias is not None)
        return out.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, g):
        cols, weight = ctx.saved
        x_shape, xp_shape, stride, padding, dilation, oh, ow, has_bias = ctx.meta
        o, c, kh, kw = weight.shape
        n = x_shape[0]
        needs = ctx.needs_input_grad
        g2 = g.transpose(0, 2, 3, 1).reshape(-1, o)
        gx = None
        if needs[0]:
            gcols = (g2 @ weight.reshape(o, -1)).reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 1, 2, 4, 5)
            gx = _unpad(_scatter_windows(gcols, xp_shape, stride, dilation), padding, x_shape)
        gw = (g2.T @ cols).reshape(weight.shape) if needs[1] else None
        if not has_bias:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if needs[2] else None)


class MaxPool2d(Function):
    """Maximum over each window; the gradient goes to the (first) maximal entry."""

    @staticmethod
    def forward(ctx, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1)):
        kh, kw = kernel
        oh = out_size(x.shape[2], kh, stride[0], padding[0], dilation[0])
        ow = out_size(x.shape[3], kw, stride[1], padding[1], dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"max_pool2d: input {x.shape[2]}x{x.shape[3]} is too small for kernel {kernel}")
        fill = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _pad(x, padding, fill)
        win = _windows(xp, kh, kw, stride, dilation, oh, ow).reshape(x.shape[0], x.shape[1], oh, ow, kh * kw)
        arg = win.argmax(axis=-1)
        ctx.saved = arg
        ctx.meta = (x.shape, xp.shape, kernel, stride, padding, dilation)
        return np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]

    @staticmethod
    def backward(ctx, g):
        arg = ctx.saved
        x_shape, xp_shape, (kh, kw), stride, padding, dilation = ctx.meta
        onehot = arg[..., None] == np.arange(kh * kw)
        gwin = (onehot * g[..., None]).reshape(g.shape + (kh, kw))
        return _unpad(_scatter_windows(gwin, xp_shape, stride, dilation), padding, x_shape)


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
        share = g / g.dtype.type(kh * kw)
        gwin = np.broadcast_to(share[..., None, None], g.shape + (kh, kw))
        return _unpad(_scatter_windows(gwin, xp_shape, stride, (1, 1)), padding, x_shape)


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
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = np.mean(xc * xc, axis=axes, keepdims=True)
        rstd = 1.0 / np.sqrt(var + x.dtype.type(eps))
        xhat = xc
        xhat *= rstd
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
        gx = None
        if needs[0]:
            gx = gxhat - gxhat.mean(axis=axes, keepdims=True)
            gx -= xhat * (gxhat * xhat).mean(axis=axes, keepdims=True)
            gx *= rstd
        grads = [gx]
        if weight is not None:
            grads.append((g * xhat).sum(axis=axes) if needs[1] else None)
            if ctx.has_bias:
                grads.append(g.sum(axis=axes) if needs[2] else None)
        return tuple(grads)
